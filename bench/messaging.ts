/**
 * Messages delivered to a subscribed actor per second, and p99 delivery latency (publish → the
 * actor's `DeliverMessage` finished), against a baseline measured in the same run: a bare `nats`
 * subscriber that does the same key-value increment (`Add` on the same in-memory store kind)
 * for each message.
 *
 * Paths (each in this process, a nats-server of its own started by the bench):
 * - baseline: NATS → `nats` subscriber callback → key-value `add`;
 * - in-process: the messaging provider's in-process broker → waPC subscriber actor (worker pool)
 *   → key-value `Add` (the memory backend's worker route);
 * - over NATS: a NATS client publishes → the messaging provider's subscription (link `URL`) →
 *   the same actor.
 * Publishers keep at most `window` messages in flight (published, not yet handled), so no path
 * drops messages; each path runs `duration` seconds after a warm-up, and the rounds alternate.
 *
 * Latency is reported twice: under that load (queueing included) and one message at a time.
 *
 * Usage: node --import tsx bench/messaging.ts [--duration 5] [--rounds 3] [--window 256] [--latency 2] [--workers 2]
 */
import { connect, type NatsConnection } from 'nats';
import pino from 'pino';
import { InProcessBroker, KeyValueProvider, MemoryKeyValueStore, MessagingProvider, type BrokerMessage } from '../capabilities/index.ts';
import { Host, KEY_VALUE, MESSAGING } from '../host/index.ts';
import { startNatsServer, type NatsServer } from '../test/helpers/nats-server.ts';
import { subscriberActor } from '../test/helpers/wascc-actors.ts';

const logger = pino({ level: 'silent' });
const SUBJECT = 'bench.messages';

export interface MessagingBenchOptions {
  durationSec: number;
  warmupSec: number;
  rounds: number;
  /** Messages in flight at most (published, not yet handled). */
  window: number;
  /** Seconds of one-at-a-time publishing for the unloaded latency. */
  latencySec: number;
  workers: number;
}

export interface PathResult {
  name: string;
  /** Throughput, with `window` messages in flight. */
  perSec: number;
  /** Latency under that load (queueing included). */
  p50Ms: number;
  p99Ms: number;
  /** Latency of one message at a time (no queue). */
  idleP50Ms: number;
  idleP99Ms: number;
}

/** Latency samples (ms) and a count, with a window that paces the publisher. */
class Meter {
  samples: number[] = [];
  /** Messages published and handled, over every run of this path. */
  sent = 0;
  done = 0;
  #waiting: (() => void) | undefined;
  recording = false;

  /** A message handled; `sentAt` from its body. */
  handled(sentAt: number): void {
    this.done++;
    if (this.recording) this.samples.push(performance.now() - sentAt);
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      w();
    }
  }

  /** Resolves once fewer than `window` published messages are unhandled. */
  room(window: number): Promise<void> | undefined {
    if (this.sent - this.done < window) return undefined;
    return new Promise((r) => (this.#waiting = r));
  }
}

/** The publish time, written into each message body (8 bytes, float64). */
function stamp(): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, performance.now());
  return b;
}
function stampOf(body: Uint8Array): number {
  return new DataView(body.buffer, body.byteOffset, 8).getFloat64(0);
}

/** Publishes for warm-up + duration with at most `window` in flight; measures the duration part. */
async function drive(meter: Meter, publish: () => void, o: { warmupSec: number; durationSec: number; window: number }, flush?: () => Promise<void>): Promise<{ perSec: number; samples: number[] }> {
  const runFor = async (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const wait = meter.room(o.window);
      if (wait) await wait;
      publish();
      meter.sent++;
      if (flush && meter.sent % 64 === 0) await flush();
      // Let deliveries run: one publish per microtask burst would starve them.
      if (meter.sent % 256 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  await runFor(o.warmupSec * 1000);
  meter.samples = [];
  meter.recording = true;
  const done0 = meter.done;
  const t0 = performance.now();
  await runFor(o.durationSec * 1000);
  const elapsed = performance.now() - t0;
  meter.recording = false;
  const handled = meter.done - done0;
  // Let what is still in flight finish before the next path.
  while (meter.done < meter.sent) await new Promise((r) => setTimeout(r, 5));
  return { perSec: (handled / elapsed) * 1000, samples: meter.samples };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]! : NaN;
}

/** Times each delivery: from the stamp in its body to the actor's answer. */
class TimedMessaging extends MessagingProvider {
  meter = new Meter();
  override async deliver(link: Parameters<MessagingProvider['deliver']>[0], m: BrokerMessage): Promise<void> {
    await super.deliver(link, m);
    this.meter.handled(stampOf(m.body));
  }
}

type Drive = (o: { warmupSec: number; durationSec: number; window: number }) => Promise<{ perSec: number; samples: number[] }>;

interface Paths {
  baseline: Drive;
  inProcess: Drive;
  overNats: Drive;
  close(): Promise<void>;
}

async function setUp(o: MessagingBenchOptions, nats: NatsServer): Promise<Paths> {
  // Baseline: a bare subscriber doing the same key-value increment.
  const subConn: NatsConnection = await connect({ servers: nats.url });
  const pubConn: NatsConnection = await connect({ servers: nats.url });
  const store = new MemoryKeyValueStore();
  const baseMeter = new Meter();
  subConn.subscribe(`${SUBJECT}.bare`, {
    callback: (_e, m) => {
      void store.add(SUBJECT, 1).then(() => baseMeter.handled(stampOf(m.data)));
    },
  });
  await subConn.flush();

  // The actor paths: one host, one subscriber actor per broker.
  const host = await Host.start({ workers: o.workers }, { logger });
  const broker = new InProcessBroker();
  const local = new TimedMessaging({ maxPendingDeliveries: o.window * 2 }, { broker });
  await host.addProvider(new KeyValueProvider());
  await host.addProvider(local);
  const remote = new TimedMessaging({ maxPendingDeliveries: o.window * 2 });
  await host.addProvider(remote, { linkName: 'nats' });
  const a = await subscriberActor({ name: 'bench-subscriber' });
  await host.startActor(a.bytes);
  await host.putLink({ actor: a.id, contract: KEY_VALUE, values: {} });
  await host.putLink({ actor: a.id, contract: MESSAGING, values: { SUBSCRIPTION: `${SUBJECT}.local` } });
  await host.putLink({ actor: a.id, contract: MESSAGING, linkName: 'nats', values: { URL: nats.url, SUBSCRIPTION: `${SUBJECT}.nats` } });
  await new Promise((r) => setTimeout(r, 200));

  return {
    baseline: (d) => drive(baseMeter, () => pubConn.publish(`${SUBJECT}.bare`, stamp()), d),
    inProcess: (d) => drive(local.meter, () => broker.publish(`${SUBJECT}.local`, stamp()), d),
    overNats: (d) => drive(remote.meter, () => pubConn.publish(`${SUBJECT}.nats`, stamp()), d),
    async close() {
      await host.stop();
      await subConn.close();
      await pubConn.close();
      await store.close();
    },
  };
}

export interface MessagingBench {
  rounds: Array<Record<'baseline' | 'inProcess' | 'overNats', PathResult>>;
}

export async function run(o: MessagingBenchOptions): Promise<MessagingBench> {
  const nats = await startNatsServer();
  const paths = await setUp(o, nats);
  const out: MessagingBench = { rounds: [] };
  try {
    for (let r = 0; r < o.rounds; r++) {
      const round = {} as MessagingBench['rounds'][number];
      for (const key of ['baseline', 'inProcess', 'overNats'] as const) {
        const { perSec, samples } = await paths[key](o);
        samples.sort((x, y) => x - y);
        const idle = (await paths[key]({ warmupSec: 0.2, durationSec: o.latencySec, window: 1 })).samples.sort((x, y) => x - y);
        round[key] = { name: key, perSec, p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99), idleP50Ms: percentile(idle, 50), idleP99Ms: percentile(idle, 99) };
      }
      out.rounds.push(round);
    }
  } finally {
    await paths.close();
    await nats.stop();
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function ms(b: MessagingBench, key: 'baseline' | 'inProcess' | 'overNats', field: 'p50Ms' | 'p99Ms' | 'idleP50Ms' | 'idleP99Ms'): string {
  return median(b.rounds.map((r) => r[key][field])).toFixed(2);
}

export function report(b: MessagingBench): string {
  const rows: Array<[string, 'baseline' | 'inProcess' | 'overNats']> = [
    ['bare `nats` subscriber + key-value add (baseline)', 'baseline'],
    ['in-process broker → waPC subscriber actor (key-value Add)', 'inProcess'],
    ['NATS → messaging provider → waPC subscriber actor', 'overNats'],
  ];
  const lines = ['| path | messages/s | ratio to baseline (range) | p50 / p99 ms, loaded | p50 / p99 ms, one at a time |', '|---|---:|---:|---:|---:|'];
  for (const [label, key] of rows) {
    const ratios = b.rounds.map((r) => r[key].perSec / r.baseline.perSec);
    const perSec = median(b.rounds.map((r) => r[key].perSec));
    lines.push(
      `| ${label} | ${Math.round(perSec)} | ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}) | ${ms(b, key, 'p50Ms')} / ${ms(b, key, 'p99Ms')} | ${ms(b, key, 'idleP50Ms')} / ${ms(b, key, 'idleP99Ms')} |`,
    );
  }
  return `${lines.join('\n')}\n(median of ${b.rounds.length} rounds; latency = publish → the actor's answer; loaded: up to the window's messages in flight)`;
}

export function messagingOptionsFromArgs(argv: string[]): MessagingBenchOptions {
  const flag = (name: string, dflt: number) => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
  return { durationSec: flag('--duration', 5), warmupSec: flag('--warmup', 1), rounds: flag('--rounds', 3), window: flag('--window', 256), latencySec: flag('--latency', 2), workers: flag('--workers', 2) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const o = messagingOptionsFromArgs(process.argv);
  process.stdout.write(`messaging: ${o.durationSec} s per path after ${o.warmupSec} s warm-up, window ${o.window}, ${o.workers} workers, ${o.rounds} rounds\n\n`);
  process.stdout.write(`${report(await run(o))}\n`);
}
