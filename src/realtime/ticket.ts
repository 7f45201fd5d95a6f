// One-use WebSocket tickets for clients that cannot send cookies: a short-lived JWT (jose,
// HS256) naming the session; its id is spent in Redis on first use.
import { createHmac, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose'
import type { RealtimeKeys } from './keys.js'

const AUDIENCE = 'tessera:ws'

export class Tickets {
  private readonly key: Uint8Array

  constructor(
    secret: string,
    private readonly redis: Redis,
    private readonly keys: RealtimeKeys,
    private readonly lifetimeSeconds: number,
  ) {
    // A key of its own, derived from SESSION_SECRET, so a ticket can never pass for anything else.
    this.key = createHmac('sha256', secret).update('realtime-ticket').digest()
  }

  async issue(sessionId: string): Promise<{ ticket: string; expiresAt: string }> {
    const expiresAt = new Date(Date.now() + this.lifetimeSeconds * 1000)
    const ticket = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sessionId)
      .setAudience(AUDIENCE)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.key)
    return { ticket, expiresAt: expiresAt.toISOString() }
  }

  /** The session id the ticket names, or null when it is invalid, expired or already used. */
  async redeem(ticket: string): Promise<string | null> {
    try {
      const { payload } = await jwtVerify(ticket, this.key, { audience: AUDIENCE, algorithms: ['HS256'] })
      if (!payload.sub || !payload.jti || !payload.exp) return null
      const ttlMs = Math.max(payload.exp * 1000 - Date.now(), 1000)
      const first = await this.redis.set(this.keys.usedTicket(payload.jti), '1', 'PX', ttlMs, 'NX')
      return first === 'OK' ? payload.sub : null
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) return null
      throw err
    }
  }
}
