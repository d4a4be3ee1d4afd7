/**
 * Where links live. The memory store is the embedded default; the lattice keeps them in a
 * JetStream KV bucket so that hosts and providers that join later learn them.
 */
import { EventEmitter } from 'node:events';
import { canonicalContract, normalizeLinkName } from './contracts.ts';
import type { LinkDefinition } from './types.ts';

export type LinkEvent = { type: 'put'; link: LinkDefinition } | { type: 'delete'; link: LinkDefinition };

export interface LinkStore {
  put(link: LinkDefinition): Promise<void>;
  delete(actor: string, contract: string, linkName?: string): Promise<LinkDefinition | undefined>;
  get(actor: string, contract: string, linkName?: string): LinkDefinition | undefined;
  list(): LinkDefinition[];
  /** Calls `listener` for every later change; returns an unsubscribe function. */
  subscribe(listener: (e: LinkEvent) => void): () => void;
}

export function linkKey(actor: string, contract: string, linkName?: string): string {
  return `${actor}/${canonicalContract(contract)}/${normalizeLinkName(linkName)}`;
}

/** Canonical form: canonical contract id, `default` link name, string values. */
export function normalizeLink(link: { actor: string; contract: string; linkName?: string; provider?: string; values?: Record<string, unknown> }): LinkDefinition {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(link.values ?? {})) values[k] = String(v);
  const out: LinkDefinition = { actor: link.actor, contract: canonicalContract(link.contract), linkName: normalizeLinkName(link.linkName), values };
  if (link.provider) out.provider = link.provider;
  return out;
}

export class MemoryLinkStore implements LinkStore {
  readonly #links = new Map<string, LinkDefinition>();
  readonly #events = new EventEmitter();

  async put(link: LinkDefinition): Promise<void> {
    const l = normalizeLink(link);
    this.#links.set(linkKey(l.actor, l.contract, l.linkName), l);
    this.#events.emit('e', { type: 'put', link: l } satisfies LinkEvent);
  }

  async delete(actor: string, contract: string, linkName?: string): Promise<LinkDefinition | undefined> {
    const key = linkKey(actor, contract, linkName);
    const l = this.#links.get(key);
    if (!l) return undefined;
    this.#links.delete(key);
    this.#events.emit('e', { type: 'delete', link: l } satisfies LinkEvent);
    return l;
  }

  get(actor: string, contract: string, linkName?: string): LinkDefinition | undefined {
    return this.#links.get(linkKey(actor, contract, linkName));
  }

  list(): LinkDefinition[] {
    return [...this.#links.values()];
  }

  subscribe(listener: (e: LinkEvent) => void): () => void {
    this.#events.on('e', listener);
    return () => this.#events.off('e', listener);
  }
}
