/**
 * The on-disk image cache:
 *
 *   <cacheDir>/blobs/<algorithm>/<hex>   content-addressed blobs (wasm layers and manifests)
 *   <cacheDir>/refs/<sha256 of ref>.json  `{ ref, manifestDigest, updatedAt }`, one small file per tag
 *   <cacheDir>/tmp/                        where writes start before their atomic rename
 *
 * Every write goes to tmp/ and is renamed into place, so a reader never sees half a file. Every
 * blob read is re-hashed: a blob that no longer matches its name is deleted and reported absent.
 * One file per ref (rather than one index file) means concurrent writers never lose each other's
 * updates.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { digestWithAlgorithm, isDigest } from './digest.ts';
import { RegistryError } from '../errors.ts';

export interface CachedRef {
  ref: string;
  manifestDigest: string;
  updatedAt: string;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class ImageCache {
  readonly dir: string;
  readonly #logger: Logger;
  #ready: Promise<void> | undefined;

  constructor(dir: string, logger: Logger) {
    this.dir = dir;
    this.#logger = logger;
  }

  #init(): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(join(this.dir, 'blobs'), { recursive: true });
      await mkdir(join(this.dir, 'refs'), { recursive: true });
      await mkdir(join(this.dir, 'tmp'), { recursive: true });
    })();
    return this.#ready;
  }

  blobPath(digest: string): string {
    if (!isDigest(digest)) throw new RegistryError('BAD_MANIFEST', `not a digest: ${JSON.stringify(digest)}`);
    const [algorithm, hex] = digest.split(':') as [string, string];
    return join(this.dir, 'blobs', algorithm, hex);
  }

  #refPath(ref: string): string {
    return join(this.dir, 'refs', `${createHash('sha256').update(ref).digest('hex')}.json`);
  }

  async #writeAtomically(path: string, data: Uint8Array | string): Promise<void> {
    await this.#init();
    const tmp = join(this.dir, 'tmp', `${randomBytes(8).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, data);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** The blob's bytes, verified; undefined when absent or corrupt (a corrupt file is removed). */
  async readBlob(digest: string): Promise<Uint8Array | undefined> {
    const path = this.blobPath(digest);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const actual = digestWithAlgorithm(digest, bytes);
    if (actual !== digest) {
      this.#logger.warn({ digest, actual, path }, 'cached blob is corrupt; removing it');
      await rm(path, { force: true });
      return undefined;
    }
    return bytes;
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.readBlob(digest)) !== undefined;
  }

  /** Stores a blob under its digest. Refuses bytes that do not match it: the cache never holds a lie. */
  async writeBlob(digest: string, bytes: Uint8Array): Promise<void> {
    const actual = digestWithAlgorithm(digest, bytes);
    if (actual !== digest) throw new RegistryError('DIGEST_MISMATCH', `refusing to cache bytes hashing to ${actual} as ${digest}`);
    const path = this.blobPath(digest);
    await this.#init();
    await mkdir(join(path, '..'), { recursive: true });
    await this.#writeAtomically(path, bytes);
  }

  async readRef(ref: string): Promise<CachedRef | undefined> {
    let text: string;
    try {
      text = await readFile(this.#refPath(ref), 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    try {
      const entry = JSON.parse(text) as CachedRef;
      // The file name is a hash of the ref: check it is the one we asked for and well formed.
      if (entry.ref === ref && typeof entry.manifestDigest === 'string' && isDigest(entry.manifestDigest)) return entry;
    } catch {
      // Unreadable entries are misses; the next pull rewrites them.
    }
    this.#logger.warn({ ref }, 'cached ref entry is unreadable; ignoring it');
    return undefined;
  }

  async writeRef(ref: string, manifestDigest: string): Promise<void> {
    const entry: CachedRef = { ref, manifestDigest, updatedAt: new Date().toISOString() };
    await this.#writeAtomically(this.#refPath(ref), `${JSON.stringify(entry)}\n`);
  }
}
