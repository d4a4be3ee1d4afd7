/** Small HTTP helpers: bounded body reading, JSON and Status responses, query parameter parsing. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, badRequest, internalError } from './api-error.ts';

/** The real server refuses request bodies over 3 MiB. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        // Stop reading but keep the socket: the 413 is answered with `Connection: close`.
        req.off('data', onData);
        req.pause();
        reject(new ApiError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('error', reject);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw badRequest('the request body is empty');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`error decoding request body: ${err instanceof Error ? err.message : String(err)}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

export function sendError(res: ServerResponse, err: unknown): ApiError {
  const apiErr = err instanceof ApiError ? err : internalError(err instanceof Error ? err.message : String(err), err);
  const headers: Record<string, string> = {};
  if (apiErr.code === 413) headers.Connection = 'close';
  if (apiErr.details?.retryAfterSeconds) headers['Retry-After'] = String(apiErr.details.retryAfterSeconds);
  for (const [k, v] of Object.entries(headers)) if (!res.headersSent) res.setHeader(k, v);
  sendJson(res, apiErr.code, apiErr.toStatus());
  return apiErr;
}

/** Reads query parameters with the types the API defines; malformed values are 400s. */
export class Query {
  constructor(readonly params: URLSearchParams) {}

  string(name: string): string | undefined {
    const v = this.params.get(name);
    return v === null ? undefined : v;
  }

  bool(name: string): boolean {
    const v = this.params.get(name);
    if (v === null || v === '' || v === 'false' || v === '0') return false;
    if (v === 'true' || v === '1') return true;
    throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)} (want true or false)`);
  }

  int(name: string): number | undefined {
    const v = this.params.get(name);
    if (v === null || v === '') return undefined;
    if (!/^-?\d+$/.test(v)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)} (want an integer)`);
    return Number(v);
  }
}
