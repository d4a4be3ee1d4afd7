/**
 * Errors of the capabilities part: each has a stable `code` and keeps its `cause`.
 */

export class ProviderError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProviderError';
    this.code = code;
  }
}

/** A link's values are invalid for this provider (bad PORT, unknown URL scheme, port in use…). */
export class LinkError extends ProviderError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('LINK_INVALID', message, options);
    this.name = 'LinkError';
  }
}

/** The actor called an operation the contract does not have, or with a payload that does not decode. */
export class OperationError extends ProviderError {
  constructor(code: 'UNKNOWN_OPERATION' | 'BAD_REQUEST' | 'NOT_LINKED' | 'BACKEND_ERROR', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'OperationError';
  }
}

export function isProviderError(err: unknown): err is ProviderError {
  return err instanceof ProviderError;
}
export function isLinkError(err: unknown): err is LinkError {
  return err instanceof LinkError;
}
export function isOperationError(err: unknown): err is OperationError {
  return err instanceof OperationError;
}
