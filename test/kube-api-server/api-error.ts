/**
 * API errors as the Kubernetes API server reports them: an HTTP status plus a `Status` object
 * (`kind: Status`, `status: Failure`, `reason`, `message`, `details`, `code`). Clients such as
 * kubectl and @kubernetes/client-node read `reason` and `code`, so both must be right.
 */
import type { JsonObject } from './types.ts';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'Timeout'
  | 'ServiceUnavailable'
  | 'InternalError';

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: Array<{ reason?: string; message?: string; field?: string }>;
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details: StatusDetails | undefined;
  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): JsonObject {
    return failureStatus(this.code, this.reason, this.message, this.details);
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}

export function failureStatus(code: number, reason: StatusReason, message: string, details?: StatusDetails): JsonObject {
  const status: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status.details = JSON.parse(JSON.stringify(details)) as JsonObject;
  return status;
}

/** `resource` is the group-qualified plural as the real server names it, e.g. `pods`, `leases.coordination.k8s.io`. */
export function notFound(resource: string, name: string, group = '', kind = resource): ApiError {
  return new ApiError(404, 'NotFound', `${resource} "${name}" not found`, { name, group, kind });
}

export function alreadyExists(resource: string, name: string, group = '', kind = resource): ApiError {
  return new ApiError(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, group, kind });
}

export function conflict(resource: string, name: string, why: string, group = '', kind = resource): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": ${why}`, { name, group, kind });
}

export const STALE_MESSAGE = 'the object has been modified; please apply your changes to the latest version and try again';

export function badRequest(message: string): ApiError {
  return new ApiError(400, 'BadRequest', message);
}

export interface FieldCause {
  field: string;
  message: string;
  reason?: string;
}

/** 422 with per-field causes, worded like the API server: `Pod "x" is invalid: spec.containers: Required value`. */
export function invalid(kind: string, name: string, causes: FieldCause[], group = ''): ApiError {
  const text = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${text}`, {
    name,
    group,
    kind,
    causes: causes.map((c) => ({ reason: c.reason ?? 'FieldValueInvalid', message: c.message, field: c.field })),
  });
}

export function gone(message: string): ApiError {
  return new ApiError(410, 'Expired', message);
}

export function methodNotAllowed(message: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', message);
}

export function unsupportedMediaType(contentType: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got ${JSON.stringify(contentType)})`);
}

export function internalError(message: string, cause?: unknown): ApiError {
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }, { cause });
}

export function successStatus(details?: StatusDetails): JsonObject {
  const status: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  if (details) status.details = JSON.parse(JSON.stringify(details)) as JsonObject;
  return status;
}
