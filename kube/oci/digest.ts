/**
 * Content digests (`algorithm:hex`) and the streaming check that bytes match one.
 */
import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from '../errors.ts';
import { isDigest } from './reference.ts';

export { isDigest };

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest of `bytes` computed with `digest`'s own algorithm. */
export function digestWithAlgorithm(digest: string, bytes: Uint8Array): string {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/**
 * Hashes bytes as they stream in and checks them against a descriptor (digest and, when known,
 * size) at the end. Fails early when more bytes arrive than the size allows.
 */
export class DigestVerifier {
  readonly #hash: Hash;
  readonly #expected: string;
  readonly #size: number | undefined;
  readonly #what: string;
  #received = 0;

  constructor(expected: string, size: number | undefined, what: string) {
    if (!isDigest(expected)) throw new RegistryError('BAD_MANIFEST', `${what}: ${JSON.stringify(expected)} is not a digest`);
    this.#expected = expected;
    this.#size = size;
    this.#what = what;
    this.#hash = createHash(expected.slice(0, expected.indexOf(':')));
  }

  get received(): number {
    return this.#received;
  }

  update(chunk: Uint8Array): void {
    this.#received += chunk.byteLength;
    if (this.#size !== undefined && this.#received > this.#size) {
      throw new RegistryError('DIGEST_MISMATCH', `${this.#what}: received more than the ${this.#size} bytes its descriptor announces`);
    }
    this.#hash.update(chunk);
  }

  /** Throws DIGEST_MISMATCH unless every byte arrived and they hash to the expected digest. */
  finish(): void {
    if (this.#size !== undefined && this.#received !== this.#size) {
      throw new RegistryError('DIGEST_MISMATCH', `${this.#what}: received ${this.#received} bytes, its descriptor announces ${this.#size}`);
    }
    const actual = `${this.#expected.slice(0, this.#expected.indexOf(':'))}:${this.#hash.digest('hex')}`;
    if (actual !== this.#expected) {
      throw new RegistryError('DIGEST_MISMATCH', `${this.#what}: content digest is ${actual}, expected ${this.#expected}`);
    }
  }
}

/** Throws DIGEST_MISMATCH unless `bytes` hash to `expected`. */
export function verifyDigest(bytes: Uint8Array, expected: string, what: string): void {
  const v = new DigestVerifier(expected, bytes.byteLength, what);
  v.update(bytes);
  v.finish();
}
