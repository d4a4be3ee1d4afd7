/**
 * `ALLOWED_HOSTS`: which hosts an actor's outbound requests may reach. Nothing is reachable
 * until the link names hosts, so a linked actor cannot be used to probe the host's network.
 *
 * Entries (comma- or space-separated, case-insensitive):
 * - `api.example.com`, `127.0.0.1`, `[::1]`: that host, any port;
 * - `api.example.com:8443`: that host, that port only (the scheme's default port when the URL
 *   names none);
 * - `*.example.com`: any subdomain (not `example.com` itself), optionally with `:port`;
 * - `*`: any host (the open mode: named, and the provider warns when a link uses it).
 *
 * Patterns match the host as the URL names it; a name admits whatever it resolves to.
 */
import { LinkError } from '../errors.ts';

export interface HostPattern {
  /** Exact host, or the suffix (with its leading dot) for `*.` patterns; empty for `*`. */
  host: string;
  wildcard: boolean;
  /** Undefined: any port. */
  port?: number;
}

const HOST_CHARS = /^[a-z0-9.-]+$|^\[[0-9a-f:.]+\]$/;

export function parseAllowedHosts(text: string | undefined): HostPattern[] {
  if (text === undefined || text.trim() === '') return [];
  const out: HostPattern[] = [];
  for (const raw of text.split(/[\s,]+/).filter(Boolean)) {
    const entry = raw.toLowerCase();
    if (entry === '*') {
      out.push({ host: '', wildcard: true });
      continue;
    }
    let host = entry;
    let portText: string | undefined;
    const bracketed = /^(\[[^\]]*\])(?::(.*))?$/.exec(entry);
    if (bracketed) [, host = '', portText] = bracketed;
    else if (entry.includes(':')) [host = '', portText] = [entry.slice(0, entry.lastIndexOf(':')), entry.slice(entry.lastIndexOf(':') + 1)];
    let port: number | undefined;
    if (portText !== undefined) {
      port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
      if (!(port >= 1 && port <= 65535)) throw new LinkError(`ALLOWED_HOSTS: ${raw} has an invalid port`);
    }
    const wildcard = host.startsWith('*.');
    const name = wildcard ? host.slice(1) : host;
    if (!name || name === '.' || name.includes('*') || !HOST_CHARS.test(wildcard ? name.slice(1) : name)) {
      throw new LinkError(`ALLOWED_HOSTS: ${JSON.stringify(raw)} is not a host, host:port, *.suffix or *`);
    }
    out.push({ host: name, wildcard, ...(port !== undefined ? { port } : {}) });
  }
  return out;
}

/** Whether `url` (already parsed) may be requested under `patterns`. */
export function hostAllowed(patterns: readonly HostPattern[], url: URL): boolean {
  const host = url.hostname.toLowerCase();
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  for (const p of patterns) {
    if (p.port !== undefined && p.port !== port) continue;
    if (p.wildcard ? p.host === '' || (host.endsWith(p.host) && host.length > p.host.length) : host === p.host) return true;
  }
  return false;
}

export function isOpen(patterns: readonly HostPattern[]): boolean {
  return patterns.some((p) => p.wildcard && p.host === '');
}
