import { randomBytes } from 'node:crypto';

/** A short random id (base64url), e.g. for invocation ids. */
export function nanoid(bytes = 12): string {
  return randomBytes(bytes).toString('base64url');
}
