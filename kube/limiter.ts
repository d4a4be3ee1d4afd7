/** At most `max` tasks at once; the rest wait their turn in order. */
export class Limiter {
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.max) await new Promise<void>((resolve) => this.#queue.push(resolve));
    this.#running++;
    try {
      return await task();
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  get pending(): number {
    return this.#running + this.#queue.length;
  }
}
