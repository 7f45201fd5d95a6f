// Browser APIs that Node lacks, for running the client SDK in tests: the Web Locks API
// (as one browser's lock manager: its tabs share one instance).

/** `navigator.locks` for exclusive locks with `ifAvailable`, as the SDK uses them. */
export class MemoryLocks {
  private readonly held = new Set<string>()

  async request<T>(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<T>): Promise<T> {
    if (!options.ifAvailable) throw new Error('only ifAvailable requests are supported here')
    if (this.held.has(name)) return callback(null)
    this.held.add(name)
    try {
      return await callback({ name, mode: 'exclusive' })
    } finally {
      this.held.delete(name)
    }
  }
}

/** `localStorage` for one simulated browser. */
export class MemoryStorage {
  private readonly items = new Map<string, string>()
  getItem(key: string) {
    return this.items.get(key) ?? null
  }
  setItem(key: string, value: string) {
    this.items.set(key, String(value))
  }
  removeItem(key: string) {
    this.items.delete(key)
  }
  dump(): string {
    return JSON.stringify([...this.items])
  }
}
