// Typed listeners: `on` returns the function that removes the listener; a listener that
// throws is logged and the others still run.

export class Emitter<Events> {
  private readonly listeners = new Map<keyof Events, Set<(detail: never) => void>>()

  on<K extends keyof Events>(type: K, listener: (detail: Events[K]) => void): () => void {
    let set = this.listeners.get(type)
    if (!set) {
      set = new Set()
      this.listeners.set(type, set)
    }
    set.add(listener as (detail: never) => void)
    return () => set.delete(listener as (detail: never) => void)
  }

  emit<K extends keyof Events>(type: K, detail: Events[K]): void {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        ;(listener as (d: Events[K]) => void)(detail)
      } catch (err) {
        console.error('[tessera] a listener failed', err)
      }
    }
  }
}
