// Group commit: writes that arrive while one is in flight wait and go together in the next
// statement. Each caller's promise settles when the statement that carried its items has
// committed (or failed), so nothing is acknowledged before it is durable; under load one
// statement carries many callers' items instead of one round trip and one WAL flush each.
// When nothing is in flight, items go at once, with whatever else arrived in the same tick.
// One caller's items always go in one statement: all of them commit or none. When a shared
// statement fails, each caller's items are written again on their own, so one bad item
// fails only its own caller.

type Waiter<T> = { items: T[]; resolve(): void; reject(err: unknown): void }

export class GroupCommit<T> {
  private queue: Waiter<T>[] = []
  private flushing = false

  /** `write` stores its items in one statement; callers are added to one until it holds `maxItems`. */
  constructor(
    private readonly write: (items: T[]) => Promise<unknown>,
    private readonly maxItems = 500,
  ) {}

  /** Resolves once `items` are committed; rejects with the statement's error. */
  add(items: T[]): Promise<void> {
    const committed = new Promise<void>((resolve, reject) => this.queue.push({ items, resolve, reject }))
    if (!this.flushing) {
      this.flushing = true
      process.nextTick(() => void this.flush())
    }
    return committed
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.nextBatch()
      try {
        await this.write(batch.flatMap((w) => w.items))
        for (const w of batch) w.resolve()
      } catch (err) {
        if (batch.length === 1) batch[0]!.reject(err)
        else for (const w of batch) await this.writeAlone(w)
      }
    }
    this.flushing = false
  }

  private async writeAlone(w: Waiter<T>): Promise<void> {
    try {
      await this.write(w.items)
      w.resolve()
    } catch (err) {
      w.reject(err)
    }
  }

  /** Whole callers from the front of the queue, at least one, until `maxItems` would be passed. */
  private nextBatch(): Waiter<T>[] {
    let count = this.queue[0]!.items.length
    let n = 1
    while (n < this.queue.length && count + this.queue[n]!.items.length <= this.maxItems) count += this.queue[n++]!.items.length
    return this.queue.splice(0, n)
  }
}
