/**
 * Label and field selectors with the syntax and matching rules of the real API server
 * (k8s.io/apimachinery `labels.Parse` and `fields.ParseSelector`). Parse errors are 400s.
 */
import { badRequest } from './api-error.ts';
import { fieldValue, supportsField, type ResourceDef } from './resources.ts';
import type { KubeObject } from './types.ts';

export type LabelOperator = 'exists' | '!' | '=' | '!=' | 'in' | 'notin' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

export interface FieldRequirement {
  key: string;
  operator: '=' | '!=';
  value: string;
}

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label key: `[prefix/]name`, prefix a DNS subdomain of at most 253 characters. */
export function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return NAME.test(key);
  const prefix = key.slice(0, slash);
  const name = key.slice(slash + 1);
  return prefix.length > 0 && prefix.length <= 253 && DNS_SUBDOMAIN.test(prefix) && NAME.test(name);
}

export function isLabelValue(v: string): boolean {
  return v.length <= 63 && VALUE.test(v);
}

type Token = { kind: 'word' | 'op' | '(' | ')' | ','; text: string };

function tokenize(input: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t') {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      out.push({ kind: c, text: c });
      i++;
    } else if (c === '!' || c === '=' || c === '<' || c === '>') {
      let j = i + 1;
      if ((c === '!' || c === '=') && input[j] === '=') j++;
      out.push({ kind: 'op', text: input.slice(i, j) });
      i = j;
    } else {
      let j = i;
      while (j < input.length && !' \t(),!=<>'.includes(input[j]!)) j++;
      out.push({ kind: 'word', text: input.slice(i, j) });
      i = j;
    }
  }
  return out;
}

function labelError(selector: string, why: string): Error {
  return badRequest(`unable to parse requirement: ${why} (in label selector ${JSON.stringify(selector)})`);
}

/** Parses a label selector; the empty string selects everything. */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const tokens = tokenize(selector);
  const reqs: LabelRequirement[] = [];
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const checkKey = (key: string) => {
    if (!isQualifiedName(key)) throw labelError(selector, `invalid label key ${JSON.stringify(key)}`);
  };
  const checkValue = (v: string) => {
    if (!isLabelValue(v)) throw labelError(selector, `invalid label value ${JSON.stringify(v)}`);
  };
  while (i < tokens.length) {
    let tok = next()!;
    if (tok.kind === 'op' && tok.text === '!') {
      const key = next();
      if (!key || key.kind !== 'word') throw labelError(selector, 'expected a key after "!"');
      checkKey(key.text);
      reqs.push({ key: key.text, operator: '!', values: [] });
    } else if (tok.kind === 'word') {
      const key = tok.text;
      checkKey(key);
      const op = peek();
      if (!op || op.kind === ',') {
        reqs.push({ key, operator: 'exists', values: [] });
      } else if (op.kind === 'op') {
        next();
        const opText = op.text === '==' ? '=' : op.text;
        if (!['=', '!=', '<', '>'].includes(opText)) throw labelError(selector, `unknown operator ${JSON.stringify(op.text)}`);
        // An empty value is allowed: `a=` selects labels equal to the empty string.
        const valTok = peek();
        let value = '';
        if (valTok && valTok.kind === 'word') {
          value = valTok.text;
          next();
        }
        if (opText === '<' || opText === '>') {
          if (!/^-?\d+$/.test(value)) throw labelError(selector, `for 'Gt', 'Lt' operators, the value must be an integer`);
          reqs.push({ key, operator: opText === '<' ? 'lt' : 'gt', values: [value] });
        } else {
          checkValue(value);
          reqs.push({ key, operator: opText as '=' | '!=', values: [value] });
        }
      } else if (op.kind === 'word' && (op.text === 'in' || op.text === 'notin')) {
        next();
        if (next()?.kind !== '(') throw labelError(selector, `expected "(" after ${op.text}`);
        const values: string[] = [];
        for (;;) {
          tok = next()!;
          if (!tok) throw labelError(selector, 'missing ")"');
          if (tok.kind === ')') break;
          if (tok.kind === ',') continue;
          if (tok.kind !== 'word') throw labelError(selector, `unexpected ${JSON.stringify(tok.text)} in value list`);
          checkValue(tok.text);
          values.push(tok.text);
        }
        if (values.length === 0) throw labelError(selector, `for '${op.text}' operator, values set can't be empty`);
        reqs.push({ key, operator: op.text, values });
      } else {
        throw labelError(selector, `unexpected ${JSON.stringify(op.text)} after key ${JSON.stringify(key)}`);
      }
    } else {
      throw labelError(selector, `unexpected ${JSON.stringify(tok.text)}`);
    }
    const sep = next();
    if (sep && sep.kind !== ',') throw labelError(selector, `expected "," but found ${JSON.stringify(sep.text)}`);
    if (sep && i >= tokens.length) throw labelError(selector, 'trailing ","');
  }
  return reqs;
}

export function matchesLabels(reqs: readonly LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = has ? l[r.key] : undefined;
    switch (r.operator) {
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case '=':
      case 'in':
        if (!has || !r.values.includes(v!)) return false;
        break;
      case '!=':
      case 'notin':
        // Like the real server, "not equal" also selects objects that lack the label.
        if (has && r.values.includes(v!)) return false;
        break;
      case 'gt':
      case 'lt': {
        if (!has || !/^-?\d+$/.test(v!)) return false;
        const n = Number(v);
        const bound = Number(r.values[0]);
        if (r.operator === 'gt' ? !(n > bound) : !(n < bound)) return false;
        break;
      }
    }
  }
  return true;
}

/** Splits on unescaped `sep`; the field selector syntax escapes `\`, `,` and `=` with a backslash. */
function splitEscaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, '$1');
}

/** Parses a field selector and checks every key against what `def` supports. */
export function parseFieldSelector(selector: string, def: ResourceDef): FieldRequirement[] {
  if (selector.trim() === '') return [];
  const reqs: FieldRequirement[] = [];
  for (const term of splitEscaped(selector, ',')) {
    let pos = -1;
    let op: '=' | '==' | '!=' = '=';
    for (let i = 0; i < term.length; i++) {
      const c = term[i]!;
      if (c === '\\') {
        i++;
      } else if (c === '!' && term[i + 1] === '=') {
        pos = i;
        op = '!=';
        break;
      } else if (c === '=') {
        pos = i;
        op = term[i + 1] === '=' ? '==' : '=';
        break;
      }
    }
    if (pos === -1) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const key = unescape(term.slice(0, pos)).trim();
    const value = unescape(term.slice(pos + op.length));
    if (!key) throw badRequest(`invalid selector: '${selector}'; empty field name in '${term}'`);
    if (!supportsField(def, key)) throw badRequest(`field label not supported: ${key}`);
    reqs.push({ key, operator: op === '!=' ? '!=' : '=', value });
  }
  return reqs;
}

export function matchesFields(reqs: readonly FieldRequirement[], def: ResourceDef, obj: KubeObject): boolean {
  for (const r of reqs) {
    const v = fieldValue(def, obj, r.key) ?? '';
    if (r.operator === '=' ? v !== r.value : v === r.value) return false;
  }
  return true;
}

/** A parsed label + field selector pair, and the name/namespace scope of a request. */
export interface ObjectFilter {
  namespace?: string;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

export function matchesFilter(filter: ObjectFilter, def: ResourceDef, obj: KubeObject): boolean {
  if (filter.namespace !== undefined && def.namespaced && obj.metadata.namespace !== filter.namespace) return false;
  return matchesLabels(filter.labels, obj.metadata.labels) && matchesFields(filter.fields, def, obj);
}
