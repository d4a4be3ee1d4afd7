/**
 * Capability contract ids. wasmlet's canonical ids are `wasmlet:*`; the waSCC ids
 * (`wascc:*`) and wasmCloud's (`wasmcloud:*`) are aliases of the same contracts, so a
 * waSCC actor that claims `wascc:keyvalue` is served by the `wasmlet:keyvalue` provider.
 */
export const HTTP_SERVER = 'wasmlet:httpserver';
export const KEY_VALUE = 'wasmlet:keyvalue';
export const LOGGING = 'wasmlet:logging';
export const MESSAGING = 'wasmlet:messaging';
export const EXTRAS = 'wasmlet:extras';
export const HTTP_CLIENT = 'wasmlet:httpclient';

const aliases: Record<string, string> = {
  'wascc:http_server': HTTP_SERVER,
  'wasmcloud:httpserver': HTTP_SERVER,
  'wascc:keyvalue': KEY_VALUE,
  'wasmcloud:keyvalue': KEY_VALUE,
  'wascc:logging': LOGGING,
  'wasmcloud:logging': LOGGING,
  'wascc:messaging': MESSAGING,
  'wasmcloud:messaging': MESSAGING,
  'wascc:extras': EXTRAS,
  'wascc:http_client': HTTP_CLIENT,
  'wasmcloud:httpclient': HTTP_CLIENT,
};

/** The canonical id of a contract id or alias; unknown ids are returned unchanged. */
export function canonicalContract(id: string): string {
  return aliases[id] ?? id;
}

/** True when `claimed` (as written in an actor's `caps`) names the same contract as `contract`. */
export function sameContract(claimed: string, contract: string): boolean {
  return canonicalContract(claimed) === canonicalContract(contract);
}

/** The link name a waSCC actor means by `""`. */
export const DEFAULT_LINK_NAME = 'default';

export function normalizeLinkName(name: string | undefined | null): string {
  return name ? name : DEFAULT_LINK_NAME;
}
