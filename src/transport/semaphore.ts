/**
 * A counting semaphore: bounds how many nodes kupgrade talks to at once (CPU on the runner, MaxStartups on shared
 * bastions) and how many channels share one SSH connection (OpenSSH's MaxSessions defaults to 10).
 */
export class Semaphore {
  private active = 0
  private readonly waiting: (() => void)[] = []
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError(`concurrency must be at least 1, got ${limit}`)
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire()
    try {
      return await fn()
    } finally {
      this.release()
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    // Hand the slot straight to the next waiter so a burst of arrivals cannot overtake it.
    if (next) next()
    else this.active--
  }
}
