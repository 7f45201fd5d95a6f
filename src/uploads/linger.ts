// What happens to the rest of a refused body. Closing a socket while the client is still
// sending makes the kernel reset the connection, and a reset can discard the answer before
// the client reads it: the client sees ECONNRESET instead of the 413. So the rest is read
// and dropped, as nginx's lingering close does, for a bounded time.
import type { IncomingMessage } from 'node:http'

export const LINGER_MS = 10_000

/** Drops whatever is still arriving of `req`'s body; closes the connection if it takes longer than `ms`. */
export function discardRestOfBody(req: IncomingMessage, ms = LINGER_MS): void {
  if (req.complete) return
  req.unpipe()
  req.resume()
  const closeAfterLinger = setTimeout(() => req.socket.destroy(), ms)
  closeAfterLinger.unref()
  req.once('end', () => clearTimeout(closeAfterLinger))
  req.socket.once('close', () => clearTimeout(closeAfterLinger))
}
