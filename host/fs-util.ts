/** Small file-system and package helpers shared across parts. */
import { randomBytes } from 'node:crypto';
import { constants, readFileSync } from 'node:fs';
import { mkdir, open, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ActorLoadError } from './errors.ts';

/** Writes through a temporary name and a rename, so readers never see half a file and a failure leaves nothing. */
export async function writeAtomically(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data, options.mode !== undefined ? { mode: options.mode } : {});
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The installed version of a package, even when its `exports` hide its package.json. */
export function packageVersion(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) return pkg.version;
    } catch {
      // not here: keep walking up
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

/** Default cap on an actor file's size: 64 MiB. */
export const DEFAULT_MAX_ACTOR_BYTES = 64 * 1024 * 1024;

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Reads an actor's bytes from a file: see `readRegularFile` (default cap 64 MiB).
 */
export function readActorFile(path: string, options: { maxBytes?: number; under?: string } = {}): Promise<Uint8Array> {
  return readRegularFile(path, { maxBytes: options.maxBytes ?? DEFAULT_MAX_ACTOR_BYTES, ...(options.under !== undefined ? { under: options.under } : {}), what: 'actor file' });
}

/**
 * Reads a file's bytes: only a regular file (not a device, FIFO or directory), at most
 * `maxBytes` (a file that grows past it while read is refused too), and,
 * when `under` is given, only a file whose real path (links resolved) lies under that directory;
 * a relative `path` is then taken relative to it. A path outside `under` is refused before the
 * file system is asked anything, so the answer never tells whether such a file exists. Throws
 * ActorLoadError naming the reason.
 */
export async function readRegularFile(path: string, options: { maxBytes: number; under?: string; what: string }): Promise<Uint8Array> {
  const { maxBytes, what } = options;
  let target = path;
  if (options.under !== undefined) {
    const base = resolve(options.under);
    target = resolve(base, path);
    if (!inside(base, target)) throw new ActorLoadError(`${path} is outside the directory this host takes ${what}s from (${base})`);
    let real: string;
    let realBase: string;
    try {
      [realBase, real] = await Promise.all([realpath(base), realpath(target)]);
    } catch (err) {
      throw new ActorLoadError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    if (!inside(realBase, real)) throw new ActorLoadError(`${path} leads outside the directory this host takes ${what}s from (${base})`);
    target = real;
  }
  let fh;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore it).
    fh = await open(target, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new ActorLoadError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ActorLoadError(`${what} ${path} is not a regular file`);
    if (st.size > maxBytes) throw new ActorLoadError(`${what} ${path} is ${st.size} bytes, over the ${maxBytes}-byte cap`);
    const buf = Buffer.allocUnsafeSlow(st.size + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.byteLength - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got > st.size) throw new ActorLoadError(`${what} ${path} grew while it was read; refused`);
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, got);
  } finally {
    await fh.close();
  }
}
