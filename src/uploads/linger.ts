// What happens to the rest of a refused body. Closing a socket while the client is still
// sending makes the kernel reset the connection, and a reset can discard the answer before
// the client reads it: the client sees ECONNRESET instead of the 413. So the rest is read
// and dropped, as nginx's lingering close does, for a bounded time; at shutdown at once.
import type { IncomingMessage } from 'node:http'

export const LINGER_MS = 10_000

export class LingeringBodies {
  private readonly lingering = new Set<IncomingMessage>()

  constructor(private readonly ms = LINGER_MS) {}

  /** Drops whatever is still arriving of `req`'s body; closes the connection if it takes longer than the linger. */
  discardRest(req: IncomingMessage): void {
    if (req.complete || req.readableEnded || req.destroyed || this.lingering.has(req)) return
    req.unpipe()
    req.resume()
    this.lingering.add(req)
    // Destroying a request that has not arrived whole destroys its connection.
    const closeAfterLinger = setTimeout(() => req.destroy(), this.ms)
    closeAfterLinger.unref()
    const done = () => {
      clearTimeout(closeAfterLinger)
      this.lingering.delete(req)
    }
    req.once('end', done)
    req.once('close', done)
  }

  /** At shutdown: no refused body holds the server open (R5: exit within 10 s). */
  closeAll(): void {
    for (const req of this.lingering) req.destroy()
    this.lingering.clear()
  }
}
