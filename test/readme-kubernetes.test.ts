/**
 * The README's Kubernetes walkthrough, run as written against `wasmlet sandbox`: the sandbox is
 * started by the CLI command (with a pod CIDR of its own, so test files running at once do not
 * share addresses), then every other line of the block runs in bash from the project's root, in
 * order, with HOME pointing at the sandbox's home, so `export KUBECONFIG=~/…` is the README's own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import pino from 'pino';
import { registerSandboxCommand, type Sandbox } from '../kube/index.ts';
import { repoRoot } from './helpers/component-actors.ts';
import { KUBECTL, loopbackCidr } from './helpers/kubelet-harness.ts';

function walkthrough(readme: string): string[] {
  const start = readme.indexOf('<!-- kubernetes-walkthrough -->');
  assert.ok(start >= 0, 'the README marks its Kubernetes walkthrough');
  const open = readme.indexOf('```sh\n', start);
  const close = readme.indexOf('\n```', open + 6);
  return readme.slice(open + 6, close).split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
}

describe("README's Kubernetes walkthrough, against wasmlet sandbox", { skip: KUBECTL ? false : 'kubectl is not installed' }, () => {
  let home: string;
  let stop!: (s: string) => void;
  let done: Promise<unknown>;
  let sandbox: Sandbox;
  let out = '';

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'wasmlet-readme-home-'));
    const stopped = new Promise<string>((r) => (stop = r));
    sandbox = await new Promise<Sandbox>((resolve, reject) => {
      const program = new Command().exitOverride();
      registerSandboxCommand(program, { stdout: (s) => (out += s), stderr: (s) => (out += s), env: { HOME: home }, untilStop: () => stopped, onStarted: resolve, logger: pino({ level: 'silent' }) });
      done = program.parseAsync(['sandbox', '--pod-cidr', loopbackCidr().cidr, '--no-build'], { from: 'user' }).catch(reject);
    });
  });
  after(async () => {
    stop?.('test');
    await done;
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('runs every line as written', { timeout: 300_000 }, async () => {
    const lines = walkthrough(await readFile(join(repoRoot, 'README.md'), 'utf8'));
    assert.match(lines[0]!, /^wasmlet sandbox\b/);
    const rest = lines.slice(1);
    assert.match(rest[0]!, /^export KUBECONFIG=/);
    assert.ok(out.includes(`export KUBECONFIG=${join(home, '.local/share/wasmlet/sandbox/kubeconfig.yaml')}`), 'the sandbox prints the README\'s export line');
    assert.equal(sandbox.kubeconfigPath, join(home, '.local/share/wasmlet/sandbox/kubeconfig.yaml'));
    const outputs: string[] = [];
    for (const [i, line] of rest.entries()) {
      // Each line in the shell state the lines before it left (the export).
      const script = [...rest.slice(0, i).filter((l) => l.startsWith('export ')), line].join('\n');
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile('bash', ['-c', script], { cwd: repoRoot, env: { ...process.env, HOME: home, KUBECONFIG: '' }, timeout: 120_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr })),
      );
      assert.equal(r.code, 0, `${line}\n${r.stderr}`);
      outputs.push(r.stdout + r.stderr);
    }
    const at = (prefix: string) => outputs[rest.findIndex((l) => l.startsWith(prefix))]!;
    assert.match(at('kubectl get nodes'), /wasmlet-sandbox\s+Ready/);
    assert.equal(at('kubectl logs hello-world-wasi-rust'), 'hello from stdout!\nhello from stderr!\nCONFIG_MAP_VAL=cool stuff\nFOO=bar\nPOD_NAME=hello-world-wasi-rust\nArgs are: []\n');
    assert.equal((at('kubectl get pods -o wide').match(/kvcounter-\S+\s+1\/1\s+Running/g) ?? []).length, 3);
    assert.match(at('curl'), /^\{"counter":1\}$/);
    assert.match(at('kubectl exec'), /exec is not supported for wasm workloads/);
    assert.match(at('kubectl logs wascc-echo'), /Received HTTP request|^$/);
  });
});
