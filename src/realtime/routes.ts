// GET /ws (the WebSocket upgrade) and POST /api/realtime/ticket (docs/realtime.md, "Connecting").
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import websocket from '@fastify/websocket'
import type { FastifyRequest } from 'fastify'
import { type Static, Type } from 'typebox'
import { authOf, originAllowed, requestInfo, requireSession, SESSION_COOKIE } from '../sessions/guards.js'
import { AppError } from '../infra/errors.js'
import { errors, IsoTime } from '../infra/schemas.js'
import type { AuthContext } from '../sessions/service.js'
import type { SessionRecord } from '../sessions/records.js'
import { CLOSE } from './protocol.js'
import { checkHandshake } from './handshake.js'
import { Tab } from './tab.js'
import type { Tickets } from './ticket.js'
import type { WebSocket } from 'ws'

declare module 'fastify' {
  interface FastifyRequest {
    upgrade: { auth: AuthContext; ended: boolean; response: ServerResponse } | null
  }
}

/**
 * @fastify/websocket keeps the upgrade's request and reply for the socket's whole life: its
 * `error` listener closes over them, and the ServerResponse it made stays assigned to the
 * connection. Both hold the request with its headers, 5 KiB of heap per tab (P4, measured
 * with `scripts/bench/sockets.ts --heap`). The tab handles its socket's errors itself.
 */
function letGoOfTheUpgrade(ws: WebSocket, connection: Socket, response: ServerResponse) {
  ws.removeAllListeners('error')
  response.detachSocket(connection)
}

/** GET /ws's query: a ticket, for clients that cannot send cookies. */
const WsQuery = Type.Object({ ticket: Type.Optional(Type.String({ maxLength: 4096 })) })

/** How long a client may take to answer our close frame before its socket is cut. */
const CLOSE_HANDSHAKE_MS = 4000

export const realtimeRoutes: FastifyPluginAsyncTypebox<{ tickets: Tickets }> = async (app, { tickets }) => {
  const { config, sessions, hub } = app
  app.decorateRequest('upgrade', null)
  // closeTimeout (ws ≥ 8.18; its types lag, hence the variable): a socket whose client has
  // not answered our close frame within it is cut, instead of after ws's default 30 s. At
  // shutdown every tab is sent 1001 at once, and Node's server.close() waits for every
  // socket: one busy client would otherwise hold the process past its 10 s (R5).
  const socketOptions = { maxPayload: config.ws.maxPayloadBytes, perMessageDeflate: false, closeTimeout: CLOSE_HANDSHAKE_MS }
  await app.register(websocket, { options: socketOptions, preClose: () => hub.close() })

  /** A session that ended recently may still connect with its cookie, to learn why (docs/realtime.md). */
  const endedRecently = (s: SessionRecord) => s.status === 'ended' && s.endedAt !== null && Date.now() - s.endedAt < config.eventLog.ttlSeconds * 1000

  const endedAuth = async (session: SessionRecord): Promise<AuthContext> => ({
    session,
    tokenHash: '',
    lastActivity: session.lastActivity,
    settings: await app.settings.get(),
  })

  async function authenticateUpgrade(req: FastifyRequest<{ Querystring: Static<typeof WsQuery> }>) {
    if (!originAllowed(req, config.allowedOrigins)) {
      throw new AppError(403, 'ORIGIN_NOT_ALLOWED', `WebSocket connections from ${req.headers.origin} are not allowed.`)
    }
    const ticket = req.query.ticket
    if (ticket !== undefined) {
      const sessionId = await tickets.redeem(ticket)
      const record = sessionId ? await sessions.byId(sessionId) : null
      if (!record) throw new AppError(401, 'UNAUTHENTICATED', 'The ticket is invalid, expired or already used; ask for a new one.')
      // A ticket is for a live session only: an ended one is refused with its end reason
      // (401 SESSION_TERMINATED / SESSION_EXPIRED), as POST /api/realtime/ticket would be.
      return { auth: await sessions.authenticateRecord(record), ended: false }
    }
    const token = req.cookies[SESSION_COOKIE]
    try {
      return { auth: await sessions.authenticate(token, requestInfo(req), false), ended: false }
    } catch (err) {
      const record = err instanceof AppError && err.statusCode === 401 && token ? await sessions.recordByToken(token) : null
      if (record && endedRecently(record)) return { auth: await endedAuth(record), ended: true }
      throw err
    }
  }

  app.get(
    '/ws',
    {
      websocket: true,
      schema: { hide: true, querystring: WsQuery },
      config: { rateLimit: false },
      onRequest: async (req, reply) => {
        checkHandshake(req, req.ws)
        req.upgrade = { ...(await authenticateUpgrade(req)), response: reply.raw }
      },
    },
    (socket, req) => {
      const upgrade = req.upgrade
      if (!upgrade) return socket.close(CLOSE.unauthenticated, 'not authenticated')
      letGoOfTheUpgrade(socket, req.raw.socket, upgrade.response)
      new Tab(socket, upgrade.auth, hub, upgrade.ended)
    },
  )

  app.post(
    '/api/realtime/ticket',
    {
      onRequest: requireSession(app),
      schema: {
        tags: ['realtime'],
        summary: 'A one-use WebSocket ticket, for clients that cannot send cookies',
        response: { 200: Type.Object({ ticket: Type.String(), expiresAt: IsoTime }), ...errors },
      },
    },
    async (req) => tickets.issue(authOf(req).session.id),
  )
}

