// Grouped reads by key: lookups that arrive while one query is in flight wait and go
// together in the next, one query for many keys instead of a round trip each. A lookup is
// only ever answered by a query sent after it was asked, so it never sees older data than
// a query of its own would have. When nothing is in flight a lookup goes at once, with
// whatever else was asked in the same tick. (The read-side twin of group-commit.ts.)

type Waiter<V> = { resolve(value: V | null): void; reject(err: unknown): void }

export class GroupRead<K, V> {
  private waiting = new Map<K, Waiter<V>[]>()
  private reading = false

  /** `read` answers many keys in one query; keys it does not return are answered null. */
  constructor(
    private readonly read: (keys: K[]) => Promise<Map<K, V>>,
    private readonly maxKeys = 500,
  ) {}

  get(key: K): Promise<V | null> {
    return new Promise((resolve, reject) => {
      const waiters = this.waiting.get(key)
      if (waiters) waiters.push({ resolve, reject })
      else this.waiting.set(key, [{ resolve, reject }])
      if (!this.reading) {
        this.reading = true
        process.nextTick(() => void this.readAll())
      }
    })
  }

  private async readAll(): Promise<void> {
    while (this.waiting.size > 0) {
      const batch = [...this.waiting].slice(0, this.maxKeys)
      for (const [key] of batch) this.waiting.delete(key)
      try {
        const found = await this.read(batch.map(([key]) => key))
        for (const [key, waiters] of batch) for (const w of waiters) w.resolve(found.get(key) ?? null)
      } catch (err) {
        for (const [, waiters] of batch) for (const w of waiters) w.reject(err)
      }
    }
    this.reading = false
  }
}
