/**
 * HTTP → waPC actor in-process, against raw node:http in the same run:
 * echo.wasm and kvcounter.wasm (memory backend), each served by `wasmlet up` in its own process.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, load, loadOptionsFromArgs, root, startProcess, table, type LoadOptions, type LoadResult } from './lib.ts';

const fixtures = join(root, '..', 'shared', 'fixtures', 'wascc');

export async function rawNodeHttp(opts: LoadOptions): Promise<LoadResult> {
  const port = await freePort();
  const server = await startProcess([join(root, 'bench', 'raw-http-server.mjs'), String(port)], 'listening');
  try {
    return await load('raw node:http', `http://127.0.0.1:${port}/`, opts);
  } finally {
    await server.stop();
  }
}

async function wasmletUp(name: string, manifest: string, path: string, opts: LoadOptions): Promise<LoadResult> {
  const server = await startProcess([join(root, 'bin', 'wasmlet.mjs'), 'up', manifest, '--log-level', 'warn'], 'wasmlet is up', { WASMLET_LOG_LEVEL: 'info' });
  try {
    return await load(name, path, opts);
  } finally {
    await server.stop();
  }
}

export async function run(opts: LoadOptions): Promise<{ baseline: LoadResult; rows: LoadResult[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'wasmlet-bench-'));
  try {
    const [echoPort, counterPort] = [await freePort(), await freePort()];
    const echoManifest = join(dir, 'echo.yaml');
    await writeFile(
      echoManifest,
      `actors: [${join(fixtures, 'echo.wasm')}]\nbindings:\n  - actor: MB4OLDIC3TCZ4Q4TGGOVAZC43VXFE2JQVRAXQMQFXUCREOOFEKOKZTY2\n    capability: wascc:http_server\n    values: { PORT: "${echoPort}", ADDRESS: 127.0.0.1 }\n`,
    );
    const counterManifest = join(dir, 'kvcounter.yaml');
    await writeFile(
      counterManifest,
      `actors: [${join(fixtures, 'kvcounter.wasm')}]\nbindings:\n  - actor: MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ\n    capability: wascc:http_server\n    values: { PORT: "${counterPort}", ADDRESS: 127.0.0.1 }\n  - actor: MASCXFM4R6X63UD5MSCDZYCJNPBVSIU6RKMXUPXRKAOSBQ6UY3VT3NPZ\n    capability: wascc:keyvalue\n`,
    );
    const baseline = await rawNodeHttp(opts);
    const echo = await wasmletUp('HTTP → echo.wasm', echoManifest, `http://127.0.0.1:${echoPort}/bench?q=1`, opts);
    const counter = await wasmletUp('HTTP → kvcounter.wasm (memory)', counterManifest, `http://127.0.0.1:${counterPort}/bench/counter`, opts);
    return { baseline, rows: [echo, counter] };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const targets = { 'HTTP → echo.wasm': 0.4, 'HTTP → kvcounter.wasm (memory)': 0.25 };

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = loadOptionsFromArgs(process.argv);
  const { baseline, rows } = await run(opts);
  process.stdout.write(`\n${opts.connections} connections, ${opts.durationSec} s each, pipelining ${opts.pipelining}\n\n${table(baseline, rows, targets)}\n`);
}
