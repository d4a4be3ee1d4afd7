/**
 * Pod volumes for WASI programs: each volume becomes a directory on the node (ConfigMap, Secret,
 * downward API and projected files are written into a per-pod directory; emptyDir is an empty
 * one; hostPath is the node's own directory), and each volumeMount becomes a preopened directory,
 * the only files the program can reach.
 */
import { mkdir, realpath, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { configMissing, podSpecError } from './errors.ts';
import { fieldValue, type ConfigSource, type PodPlacement } from './env.ts';

export interface VolumeOptions {
  /**
   * hostPath volumes: false (refused), true (any directory of the node), or the directory
   * prefixes they may name (a path is allowed when it is a prefix or lies under one, after `..`
   * segments and symbolic links are resolved).
   */
  allowHostPath: boolean | readonly string[];
  logger: Logger;
}

type Files = { path: string; data: Buffer; mode?: number }[];

/** A relative path that stays inside its directory. */
function safeRelative(path: string, what: string): string {
  const n = normalize(path);
  if (!path || isAbsolute(path) || n === '..' || n.startsWith(`..${sep}`) || n.split(sep).includes('..')) {
    throw podSpecError(`${what}: path ${JSON.stringify(path)} must be relative and stay inside the volume`);
  }
  return n;
}

function pick(all: Record<string, Buffer>, items: { key: string; path: string; mode?: number }[] | undefined, what: string, optional: boolean | undefined): Files {
  if (!items?.length) return Object.entries(all).map(([k, data]) => ({ path: safeRelative(k, what), data }));
  const out: Files = [];
  for (const it of items) {
    const data = all[it.key];
    if (data === undefined) {
      if (optional) continue;
      throw configMissing(`${what}: key "${it.key}" not found`);
    }
    out.push({ path: safeRelative(it.path, what), data, ...(it.mode !== undefined ? { mode: it.mode } : {}) });
  }
  return out;
}

async function configMapFiles(ns: string, src: { name?: string; items?: { key: string; path: string; mode?: number }[]; optional?: boolean }, source: ConfigSource, what: string): Promise<Files> {
  const cm = await source.configMap(ns, src.name ?? '');
  if (!cm) {
    if (src.optional) return [];
    throw configMissing(`${what}: configmap "${src.name}" not found`);
  }
  const all: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(cm.data ?? {})) all[k] = Buffer.from(v, 'utf8');
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) all[k] = Buffer.from(v, 'base64');
  return pick(all, src.items, what, src.optional);
}

async function secretFiles(ns: string, name: string, src: { items?: { key: string; path: string; mode?: number }[]; optional?: boolean }, source: ConfigSource, what: string): Promise<Files> {
  const s = await source.secret(ns, name);
  if (!s) {
    if (src.optional) return [];
    throw configMissing(`${what}: secret "${name}" not found`);
  }
  const all: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) all[k] = Buffer.from(v, 'base64');
  return pick(all, src.items, what, src.optional);
}

function downwardFiles(pod: V1Pod, items: { path: string; fieldRef?: { fieldPath: string }; mode?: number }[] | undefined, placement: PodPlacement, what: string): Files {
  return (items ?? []).map((it) => {
    if (!it.fieldRef) throw podSpecError(`${what}: only fieldRef items are supported in downward API volumes`);
    return { path: safeRelative(it.path, what), data: Buffer.from(fieldValue(pod, it.fieldRef.fieldPath, placement), 'utf8'), ...(it.mode !== undefined ? { mode: it.mode } : {}) };
  });
}

async function writeFiles(dir: string, files: Files, defaultMode: number | undefined): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of files) {
    const target = join(dir, f.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, f.data, { mode: f.mode ?? defaultMode ?? 0o644 });
  }
}

/** True when `path` is `prefix` or lies under it (whole path segments: `/data` does not allow `/database`). */
export function underPrefix(path: string, prefix: string): boolean {
  const p = resolve(prefix);
  return path === p || path.startsWith(p.endsWith(sep) ? p : p + sep);
}

const HOW_TO_ALLOW = 'start the node with `wasmlet kubelet --allow-host-path` (any directory) or `--allow-host-path <prefix>` (only under it)';

function checkHostPathAllowed(v: V1Volume, path: string, allow: VolumeOptions['allowHostPath']): void {
  if (allow === true) return;
  if (allow === false || allow.length === 0) {
    throw podSpecError(`volume ${v.name}: hostPath volumes are off on this node (a pod could reach any file of the node); to allow them, ${HOW_TO_ALLOW}`);
  }
  if (!allow.some((prefix) => underPrefix(path, prefix))) {
    throw podSpecError(`volume ${v.name}: hostPath ${JSON.stringify(path)} is outside the directories this node allows (${allow.join(', ')}); to allow it, ${HOW_TO_ALLOW}`);
  }
}

async function hostPathDir(v: V1Volume, allow: VolumeOptions['allowHostPath']): Promise<string> {
  const hp = v.hostPath!;
  if (!isAbsolute(hp.path)) throw podSpecError(`volume ${v.name}: hostPath ${JSON.stringify(hp.path)} must be absolute`);
  // `..` segments are resolved before any check: `/data/../etc` is `/etc`.
  const path = resolve(hp.path);
  checkHostPathAllowed(v, path, allow);
  const type = hp.type ?? '';
  if (type !== '' && type !== 'Directory' && type !== 'DirectoryOrCreate') {
    throw podSpecError(`volume ${v.name}: hostPath type ${type} cannot be mounted into a WASI program (only directories can)`);
  }
  if (type === 'DirectoryOrCreate') await mkdir(path, { recursive: true, mode: 0o755 });
  const info = await stat(path).catch(() => undefined);
  if (!info?.isDirectory()) throw podSpecError(`volume ${v.name}: hostPath ${path} is not a directory on this node`);
  // And a symbolic link may not lead out of the allowed directories either.
  const real = await realpath(path);
  if (real !== path) checkHostPathAllowed(v, real, allow);
  return real;
}

/** Materializes the pod's volumes under `root`; returns each volume's directory. */
export async function prepareVolumes(pod: V1Pod, root: string, source: ConfigSource, placement: PodPlacement, options: VolumeOptions): Promise<Map<string, string>> {
  const ns = pod.metadata?.namespace ?? 'default';
  const dirs = new Map<string, string>();
  for (const v of pod.spec?.volumes ?? []) {
    const what = `volume ${v.name}`;
    const dir = join(root, 'volumes', safeRelative(v.name, what));
    if (v.configMap) {
      await writeFiles(dir, await configMapFiles(ns, v.configMap, source, what), v.configMap.defaultMode);
    } else if (v.secret) {
      await writeFiles(dir, await secretFiles(ns, v.secret.secretName ?? '', v.secret, source, what), v.secret.defaultMode ?? 0o644);
    } else if (v.emptyDir) {
      await mkdir(dir, { recursive: true });
    } else if (v.downwardAPI) {
      await writeFiles(dir, downwardFiles(pod, v.downwardAPI.items, placement, what), v.downwardAPI.defaultMode);
    } else if (v.projected) {
      const files: Files = [];
      for (const s of v.projected.sources ?? []) {
        if (s.configMap) files.push(...(await configMapFiles(ns, s.configMap, source, what)));
        else if (s.secret) files.push(...(await secretFiles(ns, s.secret.name ?? '', s.secret, source, what)));
        else if (s.downwardAPI) files.push(...downwardFiles(pod, s.downwardAPI.items, placement, what));
        // Service account tokens (the API server adds one to every pod) are not handed to wasm programs.
        else if (s.serviceAccountToken) options.logger.debug({ volume: v.name }, 'projected service account token skipped');
        else throw podSpecError(`${what}: unsupported projected source ${Object.keys(s).join(', ')}`);
      }
      await writeFiles(dir, files, v.projected.defaultMode);
    } else if (v.hostPath) {
      dirs.set(v.name, await hostPathDir(v, options.allowHostPath));
      continue;
    } else {
      const kind = Object.keys(v).filter((k) => k !== 'name').join(', ') || 'none';
      throw podSpecError(`${what}: volume type ${kind} is not supported on this node`);
    }
    dirs.set(v.name, dir);
  }
  return dirs;
}

/** The container's mounts as WASI preopens: guest path → node directory. */
export async function preopensFor(container: V1Container, volumes: Map<string, string>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const m of container.volumeMounts ?? []) {
    const base = volumes.get(m.name);
    if (!base) throw podSpecError(`container ${container.name}: volumeMount ${m.name} names no volume of the pod`, container.name);
    if (!m.mountPath.startsWith('/')) throw podSpecError(`container ${container.name}: mountPath ${JSON.stringify(m.mountPath)} must be absolute`, container.name);
    let dir = base;
    if (m.subPath) {
      dir = resolve(base, safeRelative(m.subPath, `container ${container.name} mount ${m.name}`));
      await mkdir(dir, { recursive: true });
    }
    out[m.mountPath] = dir;
  }
  return out;
}
