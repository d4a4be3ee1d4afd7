/** Writes a kubeconfig that kubectl and @kubernetes/client-node both load unchanged. */
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export interface KubeconfigParams {
  server: string;
  /** PEM of the CA that signed the server certificate (for an https server). */
  ca?: string;
  token?: string;
  namespace?: string;
  name?: string;
}

export function renderKubeconfig(p: KubeconfigParams): string {
  const name = p.name ?? 'wasmlet-test';
  const cluster: Record<string, unknown> = { server: p.server };
  if (p.ca) cluster['certificate-authority-data'] = Buffer.from(p.ca, 'utf8').toString('base64');
  const user: Record<string, unknown> = {};
  if (p.token) user.token = p.token;
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster }],
    users: [{ name, user }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: p.namespace ?? 'default' } }],
    'current-context': name,
    preferences: {},
  });
}

export async function writeKubeconfig(path: string, p: KubeconfigParams): Promise<void> {
  await writeFile(path, renderKubeconfig(p), { mode: 0o600 });
}
