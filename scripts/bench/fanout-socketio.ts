// The peer of the fan-out benchmark: what a team would build instead with Socket.IO and its
// Redis adapter on the same Redis. A POST /api/switch_platform/:id emits the same
// `platform.switched` frame to a room per session (the adapter publishes it for the other
// nodes); a socket joins its session's room on `hello` and answers `welcome`. The session
// is named by the baseline's cookie (`sid=<session id>`): no authentication, no database,
// no event log, like the bare baseline.
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'
import type { BaselineNode } from './fanout-baseline.js'

const sessionOf = (cookie: string | undefined) => /(?:^|;\s*)sid=([^;]+)/.exec(cookie ?? '')?.[1] ?? null

export async function startSocketIoNode(redisUrl: string, prefix: string): Promise<BaselineNode> {
  const pub = new Redis(redisUrl, { connectionName: 'bench-socketio' })
  const sub = pub.duplicate({ connectionName: 'bench-socketio-sub' })
  let version = 1
  const server = createServer((req, res) => {
    const m = /^\/api\/switch_platform\/(\d+)$/.exec(req.url ?? '')
    const sessionId = sessionOf(req.headers.cookie)
    if (req.method !== 'POST' || !m || !sessionId) {
      res.writeHead(404).end()
      return
    }
    req.resume()
    req.on('end', () => {
      const id = Number(m[1])
      const platform = { id, name: `Platform ${id}`, type: 'mastodon', instanceUrl: `https://p${id}.example`, isDefault: false }
      const event = { platform, previousPlatform: null, version: ++version, byTabId: req.headers['x-tab-id'] ?? null, at: new Date().toISOString() }
      io.to(sessionId).emit('platform.switched', event)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ platform, version: event.version, message: `Switched to ${platform.name}.` }))
    })
  })
  const io = new Server(server, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    httpCompression: false,
    maxHttpBufferSize: 16 * 1024,
    adapter: createAdapter(pub, sub, { key: `${prefix}socket.io` }),
  })
  io.on('connection', (socket) => {
    const sessionId = sessionOf(socket.request.headers.cookie)
    if (!sessionId) return socket.disconnect(true)
    socket.once('hello', async (hello: { tabId?: string }) => {
      await socket.join(sessionId)
      socket.emit('welcome', { sessionId, tabId: hello.tabId ?? null, seq: 0 })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  let closing: Promise<void> | undefined
  return {
    address: `127.0.0.1:${port}`,
    close() {
      closing ??= (async () => {
        io.disconnectSockets(true)
        await new Promise<void>((resolve) => io.close(() => resolve()))
        await Promise.all([pub.quit(), sub.quit()]).catch(() => {})
      })()
      return closing
    },
  }
}
