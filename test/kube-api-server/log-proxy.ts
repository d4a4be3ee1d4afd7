/**
 * `pods/{name}/log`: proxied to the kubelet of the pod's node at
 * `https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>/containerLogs/{ns}/{pod}/{container}`
 * with the API server's own client credentials, streamed through (so `follow` works end to end).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import { ApiError, badRequest, notFound } from './api-error.ts';
import type { Query } from './http-util.ts';
import type { Registry } from './registry.ts';
import { resourceByPlural } from './resources.ts';
import { isPlainObject } from './types.ts';

export interface KubeletClientCredentials {
  /** Client certificate and key presented to kubelets (PEM). */
  cert?: string;
  key?: string;
  /** Sent as `Authorization: Bearer …` when set. */
  bearerToken?: string;
  /** CA that kubelet serving certificates must chain to; unset means they are not verified (the real server's default). */
  ca?: string;
}

/** The kubelet port the real API server assumes when a node reports none. */
const DEFAULT_KUBELET_PORT = 10250;
const FORWARDED = ['follow', 'previous', 'timestamps', 'tailLines', 'sinceSeconds', 'sinceTime', 'limitBytes'];
const ADDRESS_PREFERENCE = ['InternalIP', 'Hostname', 'InternalDNS', 'ExternalIP', 'ExternalDNS'];

function names(list: unknown): string[] {
  return Array.isArray(list) ? list.flatMap((c) => (isPlainObject(c) && typeof c.name === 'string' ? [c.name] : [])) : [];
}

/** The kubelet of a pod's node (`https://<address>:<port>`) and the pod's container names. */
export function kubeletOf(registry: Registry, namespace: string, podName: string): { base: string; containers: string[]; all: string[] } {
  const pod = registry.get(resourceByPlural('pods')!, namespace, podName);
  const spec = isPlainObject(pod.spec) ? pod.spec : {};
  const containers = names(spec.containers);
  const all = [...containers, ...names(spec.initContainers), ...names(spec.ephemeralContainers)];
  const nodeName = typeof spec.nodeName === 'string' ? spec.nodeName : '';
  if (!nodeName) throw badRequest(`pod ${podName} does not have a host assigned`);
  const node = registry.store.peek('nodes', undefined, nodeName);
  if (!node) throw notFound('nodes', nodeName, '', 'nodes');
  const status = isPlainObject(node.status) ? node.status : {};
  const addresses = (Array.isArray(status.addresses) ? status.addresses : []).filter(isPlainObject);
  let address: string | undefined;
  for (const type of ADDRESS_PREFERENCE) {
    const a = addresses.find((x) => x.type === type && typeof x.address === 'string' && x.address);
    if (a) {
      address = a.address as string;
      break;
    }
  }
  if (!address) throw new ApiError(503, 'ServiceUnavailable', `no preferred addresses found; known addresses: ${JSON.stringify(addresses)}`);
  const endpoints = isPlainObject(status.daemonEndpoints) ? status.daemonEndpoints : {};
  const kubelet = isPlainObject(endpoints.kubeletEndpoint) ? endpoints.kubeletEndpoint : {};
  const port = typeof kubelet.Port === 'number' && kubelet.Port > 0 ? kubelet.Port : DEFAULT_KUBELET_PORT;
  const host = address.includes(':') ? `[${address}]` : address;
  return { base: `https://${host}:${port}`, containers, all };
}

/** The container a request names, or the pod's only one; throws the 400 a client should see. */
export function containerOf(query: Query, podName: string, pod: { containers: string[]; all: string[] }): string {
  let container = query.string('container');
  if (!container) {
    if (pod.containers.length !== 1) throw badRequest(`a container name must be specified for pod ${podName}, choose one of: [${pod.containers.join(' ')}]`);
    container = pod.containers[0]!;
  }
  if (!pod.all.includes(container)) throw badRequest(`container ${container} is not valid for pod ${podName}`);
  return container;
}

/** Works out the kubelet URL for a pod's container log; throws the API error a client should see. */
export function kubeletLogUrl(registry: Registry, namespace: string, podName: string, query: Query): URL {
  const kubelet = kubeletOf(registry, namespace, podName);
  const container = containerOf(query, podName, kubelet);
  const url = new URL(`${kubelet.base}/containerLogs/${encodeURIComponent(namespace)}/${encodeURIComponent(podName)}/${encodeURIComponent(container)}`);
  for (const p of FORWARDED) {
    const v = query.string(p);
    if (v !== undefined && v !== '') url.searchParams.set(p, v);
  }
  return url;
}

/** Streams the kubelet's answer to `res`; resolves when the exchange is over. */
export function proxyLogs(req: IncomingMessage, res: ServerResponse, url: URL, creds: KubeletClientCredentials, logger: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Accept: '*/*' };
    if (creds.bearerToken) headers.Authorization = `Bearer ${creds.bearerToken}`;
    const upstream = httpsRequest(url, {
      method: 'GET',
      headers,
      cert: creds.cert,
      key: creds.key,
      ca: creds.ca,
      rejectUnauthorized: creds.ca !== undefined,
    });
    let settled = false;
    const done = (err?: ApiError) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    const abort = () => upstream.destroy();
    req.on('close', abort);
    res.on('close', abort);
    upstream.on('error', (err) => {
      logger.debug({ err, url: url.toString() }, 'kubelet log request failed');
      if (res.headersSent) {
        res.destroy();
        done();
      } else done(new ApiError(500, 'InternalError', `Get "${url.toString()}": ${err.message}`, undefined, { cause: err }));
    });
    upstream.on('response', (up) => {
      const status = up.statusCode ?? 502;
      if (status !== 200) {
        const chunks: Buffer[] = [];
        let size = 0;
        up.on('data', (c: Buffer) => {
          if (size < 65536) chunks.push(c);
          size += c.length;
        });
        up.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8').trim() || `kubelet answered ${status}`;
          const reason = status === 404 ? 'NotFound' : status === 400 ? 'BadRequest' : status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'InternalError';
          done(new ApiError(status >= 400 && status < 600 ? status : 502, reason, text));
        });
        up.on('error', () => done(new ApiError(502, 'InternalError', `kubelet answered ${status}`)));
        return;
      }
      res.writeHead(200, { 'Content-Type': up.headers['content-type'] ?? 'text/plain', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
      res.flushHeaders();
      up.pipe(res);
      up.on('end', () => done());
      up.on('error', () => {
        res.destroy();
        done();
      });
    });
    upstream.end();
  });
}
