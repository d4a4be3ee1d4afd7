import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOperationError } from '../errors.ts';
import { assertTableSound, throwsOp } from './shared-table-checks.ts';
import { SharedKeyValueTable } from './shared-table.ts';

describe('shared table: memory', () => {
  test('the keyspace and a set grow far past their first size', () => {
    const t = SharedKeyValueTable.create({ maxItems: 32_768 });
    const n = 200_000;
    for (let i = 0; i < n; i++) t.set(`key:${i}`, `value:${i}`, 0);
    assert.equal(t.size, n);
    for (let i = 0; i < n; i += 997) assert.deepEqual(t.get(`key:${i}`), { value: `value:${i}`, exists: true });
    assert.equal(t.get(`key:${n}`).exists, false);
    for (let i = 0; i < 20_000; i++) t.setAdd('big-set', `m${i}`);
    assert.equal(t.setQuery('big-set').length, 20_000);
    assert.deepEqual(t.setIntersection(['big-set', 'big-set']).length, 20_000);
    for (let i = 0; i < n; i += 2) assert.equal(t.del(`key:${i}`), true);
    assert.equal(t.size, n / 2 + 1);
    for (let i = 1; i < n; i += 2000) assert.deepEqual(t.get(`key:${i}`), { value: `value:${i}`, exists: true });
    assertTableSound(t);
  });

  test('running out of memory fails cleanly, keeps the data, and freeing makes room again', () => {
    const t = SharedKeyValueTable.create({ bytes: 64 * 1024 });
    const baseline = assertTableSound(t).usedBytes;
    const value = 'v'.repeat(500);
    let stored = 0;
    const full = /out of shared memory \(65536 bytes\)/;
    for (;;) {
      try {
        t.set(`k${stored}`, value, 0);
      } catch (err) {
        assert.ok(isOperationError(err) && err.code === 'BACKEND_ERROR' && full.test(err.message), String(err));
        break;
      }
      stored++;
    }
    assert.ok(stored > 50, `stored ${stored}`);
    assert.equal(t.size, stored);
    assert.equal(t.keyExists(`k${stored}`), false, 'the failed Set left nothing behind');
    // Every kind of growth fails the same way and changes nothing.
    throwsOp(() => t.set('k0', 'w'.repeat(5000), 0), 'BACKEND_ERROR', full);
    throwsOp(() => t.push('list', value.repeat(10)), 'BACKEND_ERROR', full);
    throwsOp(() => t.setAdd('set', value.repeat(10)), 'BACKEND_ERROR', full);
    assert.equal(t.size, stored);
    assert.equal(t.keyExists('list') || t.keyExists('set'), false);
    for (let i = 0; i < stored; i++) assert.deepEqual(t.get(`k${i}`), { value, exists: true });
    assertTableSound(t);
    for (let i = 0; i < stored; i += 2) t.del(`k${i}`);
    for (let i = 0; i < stored; i += 2) t.set(`k${i}`, value.toUpperCase(), 0);
    assert.deepEqual(t.get('k2'), { value: value.toUpperCase(), exists: true }, 'freed blocks were reused');
    const huge = 'h'.repeat(40_000);
    throwsOp(() => t.set('huge', huge, 0), 'BACKEND_ERROR', full);
    for (let i = 0; i < stored; i++) t.del(`k${i}`);
    assert.equal(assertTableSound(t).usedBytes, baseline, 'failed operations leaked nothing');
    t.set('huge', huge, 0);
    assert.equal(t.get('huge').value, huge, 'freed neighbours merged into one large block');
    assertTableSound(t);
  });

  test('a workload that sets and deletes forever does not run out, and leaks nothing', () => {
    const t = SharedKeyValueTable.create({ bytes: 64 * 1024 });
    const baseline = assertTableSound(t).usedBytes;
    let seed = 42;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 30_000; i++) {
      const key = `k${rand(20)}`;
      switch (rand(6)) {
        case 0: t.set(key, 'x'.repeat(rand(1500)), rand(2)); break;
        case 1: t.del(key); break;
        case 2: t.clear(`l${rand(5)}`); break;
        case 3: if (t.range(`l${rand(5)}`, 0, -1).length < 50) t.push(`l${rand(5)}`, 'y'.repeat(rand(300))); break;
        case 4: t.setAdd(`s${rand(5)}`, `m${rand(60)}`); break;
        default: t.setRemove(`s${rand(5)}`, `m${rand(60)}`); break;
      }
    }
    for (let i = 0; i < 20; i++) t.del(`k${i}`);
    for (let i = 0; i < 5; i++) {
      t.del(`l${i}`);
      t.del(`s${i}`);
    }
    assert.equal(t.size, 0);
    assert.equal(assertTableSound(t).usedBytes, baseline, 'everything freed went back');
  });

  test('random operations answer exactly as a plain model does', () => {
    type Model = Map<string, string | string[] | Set<string>>;
    const model: Model = new Map();
    const t = SharedKeyValueTable.create({ bytes: 1 << 20 });
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const keys = ['a', 'b', 'ключ', '🔑', '', 'k'.repeat(70), 'c', 'd'];
    const values = ['', '0', '1', '-5', 'x', 'é', '9007199254740991', 'long'.repeat(30), '01'];
    const wrong = new Error('WRONGTYPE');
    const kindOf = (k: string, want: 'string' | 'list' | 'set') => {
      const v = model.get(k);
      if (v === undefined) return undefined;
      const kind = typeof v === 'string' ? 'string' : Array.isArray(v) ? 'list' : 'set';
      if (kind !== want) throw wrong;
      return v;
    };
    const ops: Array<[string, () => unknown, () => unknown]> = [];
    for (let i = 0; i < 6000; i++) {
      const k = keys[rand(keys.length)] as string;
      const k2 = keys[rand(keys.length)] as string;
      const v = values[rand(values.length)] as string;
      const d = rand(7) - 3;
      const pick = rand(14);
      let name: string;
      let real: () => unknown;
      let expected: () => unknown;
      switch (pick) {
        case 0: name = 'set'; real = () => t.set(k, v, 0); expected = () => void model.set(k, v); break;
        case 1: name = 'get'; real = () => t.get(k); expected = () => {
          const s = kindOf(k, 'string') as string | undefined;
          return s === undefined ? { value: '', exists: false } : { value: s, exists: true };
        }; break;
        case 2: name = 'del'; real = () => t.del(k); expected = () => model.delete(k); break;
        case 3: name = 'add'; real = () => t.add(k, d); expected = () => {
          const s = kindOf(k, 'string') as string | undefined;
          const n = s === undefined ? 0 : /^(?:0|-?[1-9][0-9]*)$/.test(s) && Number.isSafeInteger(Number(s)) ? Number(s) : NaN;
          if (Number.isNaN(n)) throw new Error('not an integer');
          if (!Number.isSafeInteger(n + d)) throw new Error('overflow');
          model.set(k, String(n + d));
          return n + d;
        }; break;
        case 4: name = 'push'; real = () => t.push(k, v); expected = () => {
          const l = (kindOf(k, 'list') as string[] | undefined) ?? [];
          l.push(v);
          model.set(k, l);
          return l.length;
        }; break;
        case 5: {
          const a = rand(9) - 4;
          const b = rand(9) - 4;
          name = `range ${a} ${b}`;
          real = () => t.range(k, a, b);
          expected = () => {
            const l = (kindOf(k, 'list') as string[] | undefined) ?? [];
            const from = Math.max(0, a < 0 ? l.length + a : a);
            const to = b < 0 ? l.length + b : b;
            return from > to ? [] : l.slice(from, to + 1);
          };
          break;
        }
        case 6: name = 'listItemDelete'; real = () => t.listItemDelete(k, v); expected = () => {
          const l = kindOf(k, 'list') as string[] | undefined;
          if (l === undefined) return 0;
          const kept = l.filter((x) => x !== v);
          if (kept.length === 0) model.delete(k);
          else model.set(k, kept);
          return kept.length;
        }; break;
        case 7: name = 'setAdd'; real = () => t.setAdd(k, v); expected = () => {
          const s = (kindOf(k, 'set') as Set<string> | undefined) ?? new Set<string>();
          const had = s.has(v);
          s.add(v);
          model.set(k, s);
          return had ? 0 : 1;
        }; break;
        case 8: name = 'setRemove'; real = () => t.setRemove(k, v); expected = () => {
          const s = kindOf(k, 'set') as Set<string> | undefined;
          if (s === undefined || !s.delete(v)) return 0;
          if (s.size === 0) model.delete(k);
          return 1;
        }; break;
        case 9: name = 'setQuery'; real = () => t.setQuery(k).sort(); expected = () => [...((kindOf(k, 'set') as Set<string> | undefined) ?? [])].sort(); break;
        case 10: name = 'setUnion'; real = () => t.setUnion([k, k2]).sort(); expected = () => {
          const a = (kindOf(k, 'set') as Set<string> | undefined) ?? new Set<string>();
          const b = (kindOf(k2, 'set') as Set<string> | undefined) ?? new Set<string>();
          return [...new Set([...a, ...b])].sort();
        }; break;
        case 11: name = 'setIntersection'; real = () => t.setIntersection([k, k2]).sort(); expected = () => {
          const a = kindOf(k, 'set') as Set<string> | undefined;
          const b = kindOf(k2, 'set') as Set<string> | undefined;
          return a && b ? [...a].filter((m) => b.has(m)).sort() : [];
        }; break;
        case 12: name = 'keyExists'; real = () => t.keyExists(k); expected = () => model.has(k); break;
        default: name = 'clear'; real = () => t.clear(k); expected = () => void model.delete(k); break;
      }
      ops.push([`${i}: ${name} ${JSON.stringify(k)} ${JSON.stringify(v)}`, real, expected]);
    }
    const outcome = (fn: () => unknown) => {
      try {
        return { ok: fn() };
      } catch (err) {
        const msg = (err as Error).message;
        return { error: /WRONGTYPE/.test(msg) ? 'WRONGTYPE' : /not an integer/.test(msg) ? 'integer' : /overflow/.test(msg) ? 'overflow' : msg };
      }
    };
    for (const [label, real, expected] of ops) {
      assert.deepEqual(outcome(real), outcome(expected), label);
    }
    assert.equal(t.size, model.size);
    assertTableSound(t);
  });

  test('the sweep and lazy expiry keep expiring-key bookkeeping sound', () => {
    let now = 1_000_000;
    const t = SharedKeyValueTable.create({ bytes: 1 << 20, now: () => now });
    const baseline = assertTableSound(t).usedBytes;
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 300; i++) {
        if (i % 3 === 0) t.set(`e${i}`, 'v', 1 + (i % 4));
        else if (i % 3 === 1) t.set(`e${i}`, 'w', 0);
        else t.add(`e${i}`, 1);
      }
      now += 2500;
      // Sweeps stop mid-list; then entries under the sweep's cursor go by every other path.
      for (let i = 0; i < 200; i++) t.keyExists('nothing');
      for (let i = 0; i < 300; i += 3) {
        if (i % 4 === 0) t.del(`e${i}`);
        else if (i % 4 === 1) t.set(`e${i}`, 'replaced', 0);
        else t.get(`e${i}`);
      }
      assertTableSound(t);
    }
    now += 10_000;
    for (let i = 0; i < 2000; i++) t.keyExists('nothing');
    assertTableSound(t);
    for (let i = 0; i < 300; i++) t.del(`e${i}`);
    assert.equal(t.size, 0);
    assert.equal(assertTableSound(t).usedBytes, baseline);
  });

  test('an operation short of memory at any step rolls back all it took', () => {
    type Step = (t: SharedKeyValueTable) => unknown;
    const scenarios: Array<[string, Step, Step]> = [
      ['push to a new list', () => {}, (t) => t.push('target', 'x'.repeat(20))],
      ['push that grows a list', (t) => { for (let i = 0; i < 4; i++) t.push('target', 'i'); }, (t) => t.push('target', 'x'.repeat(20))],
      ['setAdd to a new set', () => {}, (t) => t.setAdd('target', 'm'.repeat(20))],
      ['setAdd that grows a set', (t) => { for (let i = 0; i < 3; i++) t.setAdd('target', `m${i}`); }, (t) => t.setAdd('target', 'n'.repeat(20))],
      ['add to a new key', () => {}, (t) => t.add('target', 1)],
      ['set of a new key', () => {}, (t) => t.set('target', 'v'.repeat(30), 5)],
      ['set over a list', (t) => t.push('target', 'a'), (t) => t.set('target', 'v'.repeat(100), 0)],
    ];
    const snapshot = (t: SharedKeyValueTable) => {
      for (const read of [() => t.get('target'), () => t.range('target', 0, -1), () => t.setQuery('target').sort()]) {
        try {
          return read();
        } catch {
          // another kind
        }
      }
      return undefined;
    };
    for (const [name, setup, op] of scenarios) {
      const t = SharedKeyValueTable.create({ bytes: 64 * 1024 });
      setup(t);
      // Fill with pads, then with the smallest entries, so even a small operation is short.
      let pads = 0;
      for (const pad of [(k: string) => t.set(k, 'pad-value', 0), (k: string) => t.add(k, 1)]) {
        try {
          for (;;) pad(`p${pads++}`);
        } catch {
          pads--;
        }
      }
      let failures = 0;
      for (let freed = 0; ; freed++) {
        const before = { used: assertTableSound(t).usedBytes, size: t.size, target: snapshot(t) };
        try {
          op(t);
          break;
        } catch (err) {
          assert.ok(isOperationError(err) && /out of shared memory/.test(err.message), `${name}: ${String(err)}`);
          failures++;
        }
        const after = { used: assertTableSound(t).usedBytes, size: t.size, target: snapshot(t) };
        assert.deepEqual(after, before, `${name}: a failed attempt changed the table`);
        assert.ok(freed < pads, `${name}: never succeeded`);
        t.del(`p${freed}`);
      }
      assert.ok(failures > 0, `${name}: memory was never short`);
      assertTableSound(t);
    }
  });
});
