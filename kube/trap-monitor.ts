/**
 * Notices actors that keep failing: a trap (or an overrun deadline) discards one instance and the
 * host keeps serving, so one is not a crash; `crashTraps` of them within `crashWindowMs` is, and
 * the pod's restartPolicy takes over (CrashLoopBackOff). Counts come from the host
 * (`host.actor(id).traps`), which counts every trap and overrun of the actor's calls.
 */
import type { Host } from '../host/index.ts';

export interface TrapMonitorOptions {
  crashTraps: number;
  crashWindowMs: number;
  pollMs: number;
}

interface Watched {
  seen: number;
  times: number[];
  onCrash: (traps: number) => void;
}

export class TrapMonitor {
  readonly #watched = new Map<string, Watched>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: Host,
    private readonly options: TrapMonitorOptions,
  ) {}

  #count(actor: string): number {
    return this.host.actor(actor)?.traps ?? 0;
  }

  /** Calls `onCrash` (once) when `actor` crashes; failures before this call do not count. */
  watch(actor: string, onCrash: (traps: number) => void): void {
    this.#watched.set(actor, { seen: this.#count(actor), times: [], onCrash });
    this.#timer ??= setInterval(() => this.#poll(), this.options.pollMs);
    this.#timer.unref();
  }

  unwatch(actor: string): void {
    this.#watched.delete(actor);
    if (this.#watched.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  stop(): void {
    this.#watched.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #poll(): void {
    const now = Date.now();
    for (const [actor, w] of [...this.#watched]) {
      const count = this.#count(actor);
      for (let i = w.seen; i < count; i++) w.times.push(now);
      w.seen = count;
      w.times = w.times.filter((t) => now - t < this.options.crashWindowMs);
      if (w.times.length >= this.options.crashTraps) {
        this.unwatch(actor);
        w.onCrash(w.times.length);
      }
    }
  }
}
