/**
 * Capability annotations: which links a pod's actors get, their values, and where their providers
 * run. The scheme (documented in docs/kubernetes.md):
 *
 *   wasmlet.dev/capabilities: "keyvalue, wascc:logging, httpserver@admin"
 *       contracts to link (`contract[@linkName]`); short names are httpserver, keyvalue, logging,
 *       messaging, httpclient, extras.
 *   wasmlet.dev/link.<name>[.<linkName>].<KEY>: "value"
 *       one link value; also asks for the link. <name> is a short name, or the part after ":" of
 *       a contract listed in wasmlet.dev/capabilities.
 *   wasmlet.dev/provider.<name>[.<linkName>]: "<provider id>"
 *       the link's provider runs elsewhere on the lattice (stored in the link's `provider`).
 *   wasmlet.dev/links: YAML or JSON list of {contract, linkName?, provider?, values?, container?}
 *       the general form (any contract id, multi-container pods).
 *   wasmlet.dev/max-concurrency: "N"
 *       calls of each of the pod's actors that run at once (read by actor-limits.ts).
 *
 * Any other key under wasmlet.dev/ is refused, so a typo fails the pod instead of being ignored.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { canonicalContract, describeIssues, EXTRAS, HTTP_CLIENT, HTTP_SERVER, KEY_VALUE, LOGGING, MESSAGING, normalizeLinkName } from '../host/index.ts';
import { MAX_CONCURRENCY_ANNOTATION } from './actor-limits.ts';
import { annotationError } from './errors.ts';

export const ANNOTATION_PREFIX = 'wasmlet.dev/';
export const CAPABILITIES_ANNOTATION = 'wasmlet.dev/capabilities';
export const LINKS_ANNOTATION = 'wasmlet.dev/links';

/** Short names of the built-in contracts. */
export const CONTRACT_SHORT_NAMES: Readonly<Record<string, string>> = {
  httpserver: HTTP_SERVER,
  http_server: HTTP_SERVER,
  keyvalue: KEY_VALUE,
  logging: LOGGING,
  messaging: MESSAGING,
  httpclient: HTTP_CLIENT,
  http_client: HTTP_CLIENT,
  extras: EXTRAS,
};

/** A link a pod asks for. */
export interface LinkSpec {
  /** Canonical contract id. */
  contract: string;
  linkName: string;
  /** Lattice provider id when the provider is not on this host. */
  provider?: string;
  values: Record<string, string>;
  /** Only this container's actor; undefined: every actor container of the pod. */
  container?: string;
  /** The annotation that asked for it (for error messages). */
  source: string;
}

const CONTRACT_ID = /^[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$/;
const LINK_NAME = /^[A-Za-z0-9_-]+$/;
const VALUE_KEY = /^[A-Za-z0-9_-]+$/;

function contractOf(text: string, key: string): string {
  const t = text.trim();
  if (CONTRACT_SHORT_NAMES[t]) return CONTRACT_SHORT_NAMES[t]!;
  if (CONTRACT_ID.test(t)) return canonicalContract(t);
  throw annotationError(key, `${JSON.stringify(t)} is not a contract id (namespace:name) or one of ${Object.keys(CONTRACT_SHORT_NAMES).join(', ')}`);
}

function checkLinkName(name: string, key: string): string {
  if (!LINK_NAME.test(name)) throw annotationError(key, `link name ${JSON.stringify(name)} must be letters, digits, "-" or "_"`);
  return name;
}

const linkEntrySchema = z
  .object({
    contract: z.string().min(1),
    linkName: z.string().min(1).optional(),
    provider: z.string().min(1).optional(),
    container: z.string().min(1).optional(),
    values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  })
  .strict();

const linkId = (s: { contract: string; linkName: string; container?: string }) => `${s.container ?? '*'}|${s.contract}|${s.linkName}`;

/**
 * Reads the capability annotations of a pod. Throws a fatal PodError (reason
 * InvalidCapabilityAnnotation) naming the annotation for anything malformed.
 */
export function parseCapabilityAnnotations(annotations: Record<string, string> | undefined, containerNames: readonly string[]): LinkSpec[] {
  const all = annotations ?? {};
  const simple = new Map<string, LinkSpec>();
  // Contracts listed in wasmlet.dev/capabilities, by the part after ":" (for per-key annotations).
  const byName = new Map<string, string>(Object.entries(CONTRACT_SHORT_NAMES));

  const listed = all[CAPABILITIES_ANNOTATION];
  if (listed !== undefined) {
    const items = listed.split(/[\s,]+/).filter(Boolean);
    if (items.length === 0) throw annotationError(CAPABILITIES_ANNOTATION, 'lists no contract');
    for (const item of items) {
      const at = item.lastIndexOf('@');
      const contractText = at > 0 ? item.slice(0, at) : item;
      const linkName = at > 0 ? checkLinkName(item.slice(at + 1), CAPABILITIES_ANNOTATION) : 'default';
      const contract = contractOf(contractText, CAPABILITIES_ANNOTATION);
      if (contractText.includes(':')) byName.set(contractText.slice(contractText.indexOf(':') + 1), contract);
      const spec: LinkSpec = { contract, linkName, values: {}, source: CAPABILITIES_ANNOTATION };
      if (simple.has(linkId(spec))) throw annotationError(CAPABILITIES_ANNOTATION, `${item} is listed twice`);
      simple.set(linkId(spec), spec);
    }
  }

  const specFor = (key: string, name: string, linkName: string): LinkSpec => {
    const contract = byName.get(name);
    if (!contract) throw annotationError(key, `unknown contract name ${JSON.stringify(name)}: use ${[...byName.keys()].join(', ')}, or list its id in ${CAPABILITIES_ANNOTATION}`);
    const probe = { contract, linkName };
    let spec = simple.get(linkId(probe));
    if (!spec) {
      spec = { contract, linkName, values: {}, source: key };
      simple.set(linkId(spec), spec);
    }
    return spec;
  };

  let yamlSpecs: LinkSpec[] = [];
  for (const [key, value] of Object.entries(all)) {
    if (!key.startsWith(ANNOTATION_PREFIX) || key === CAPABILITIES_ANNOTATION || key === MAX_CONCURRENCY_ANNOTATION) continue;
    const rest = key.slice(ANNOTATION_PREFIX.length);
    if (key === LINKS_ANNOTATION) {
      yamlSpecs = parseLinksDocument(value, containerNames);
    } else if (rest.startsWith('link.')) {
      const parts = rest.slice('link.'.length).split('.');
      if (parts.length !== 2 && parts.length !== 3) throw annotationError(key, 'expected wasmlet.dev/link.<contract>.<KEY> or wasmlet.dev/link.<contract>.<linkName>.<KEY>');
      const valueKey = parts.at(-1)!;
      if (!VALUE_KEY.test(valueKey)) throw annotationError(key, `value name ${JSON.stringify(valueKey)} must be letters, digits, "-" or "_"`);
      const spec = specFor(key, parts[0]!, parts.length === 3 ? checkLinkName(parts[1]!, key) : 'default');
      spec.values[valueKey] = value;
    } else if (rest.startsWith('provider.')) {
      const parts = rest.slice('provider.'.length).split('.');
      if (parts.length !== 1 && parts.length !== 2) throw annotationError(key, 'expected wasmlet.dev/provider.<contract> or wasmlet.dev/provider.<contract>.<linkName>');
      if (!value.trim()) throw annotationError(key, 'names no provider');
      const spec = specFor(key, parts[0]!, parts.length === 2 ? checkLinkName(parts[1]!, key) : 'default');
      spec.provider = value.trim();
    } else {
      throw annotationError(key, `unknown wasmlet annotation (known: ${CAPABILITIES_ANNOTATION}, ${LINKS_ANNOTATION}, wasmlet.dev/link.*, wasmlet.dev/provider.*, ${MAX_CONCURRENCY_ANNOTATION})`);
    }
  }

  const out = [...simple.values()];
  const seen = new Set(out.map(linkId));
  for (const s of yamlSpecs) {
    const clash = seen.has(linkId(s)) || (s.container !== undefined && seen.has(linkId({ ...s, container: undefined })));
    if (clash) throw annotationError(LINKS_ANNOTATION, `the ${s.contract} link ${s.linkName} is also defined by other wasmlet.dev annotations`);
    seen.add(linkId(s));
    out.push(s);
  }
  return out;
}

function parseLinksDocument(text: string, containerNames: readonly string[]): LinkSpec[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw annotationError(LINKS_ANNOTATION, `not YAML or JSON: ${(err as Error).message.split('\n')[0]}`, err);
  }
  if (!Array.isArray(doc)) throw annotationError(LINKS_ANNOTATION, 'must be a list of links ({contract, linkName?, provider?, values?, container?})');
  const out: LinkSpec[] = [];
  const seen = new Set<string>();
  doc.forEach((entry, i) => {
    const r = linkEntrySchema.safeParse(entry);
    if (!r.success) throw annotationError(LINKS_ANNOTATION, `entry ${i}: ${describeIssues(r.error)}`);
    const e = r.data;
    if (e.container !== undefined && !containerNames.includes(e.container)) {
      throw annotationError(LINKS_ANNOTATION, `entry ${i}: no container named ${JSON.stringify(e.container)} (containers: ${containerNames.join(', ')})`);
    }
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(e.values ?? {})) values[k] = String(v);
    const spec: LinkSpec = {
      contract: contractOf(e.contract, LINKS_ANNOTATION),
      linkName: checkLinkName(normalizeLinkName(e.linkName), LINKS_ANNOTATION),
      values,
      source: LINKS_ANNOTATION,
      ...(e.provider ? { provider: e.provider } : {}),
      ...(e.container ? { container: e.container } : {}),
    };
    if (seen.has(linkId(spec))) throw annotationError(LINKS_ANNOTATION, `entry ${i}: the ${spec.contract} link ${spec.linkName} is listed twice`);
    seen.add(linkId(spec));
    out.push(spec);
  });
  return out;
}
