// The fan-out baseline: the thinnest thing that does Tessera's transport work. A bare
// `ws` WebSocketServer on a bare HTTP server (no Fastify); a POST does one Redis PUBLISH of
// a small JSON frame to the session's channel; one subscriber connection holds one channel
// per session that has a socket here and relays each frame to those sockets. Resume reads
// the session's stream with one pipelined GET + XRANGE, as Tessera's event log does.
// A DELETE /admin/sessions/:id publishes a `session.terminated` frame the same way; the
// relay closes the session's sockets with 4001 after it.
// No authentication, no database, no log of switches: that is the point.
import { createServer, type IncomingMessage } from 'node:http'
import { Redis } from 'ioredis'
import { WebSocket, WebSocketServer } from 'ws'

export interface BaselineNode {
  address: string
  close(): Promise<void>
}

/** The session a request belongs to: the baseline's "cookie" is the session id itself. */
function sessionOf(req: IncomingMessage): string | null {
  return /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1] ?? null
}

const TERMINATED_FRAME_HEAD = '{"type":"session.terminated"'

export const baselineKeys = (prefix: string) => ({
  channel: (sessionId: string) => `${prefix}{${sessionId}}:events`,
  log: (sessionId: string) => `${prefix}{${sessionId}}:log`,
  seq: (sessionId: string) => `${prefix}{${sessionId}}:seq`,
})

export async function startBaselineNode(redisUrl: string, prefix: string): Promise<BaselineNode> {
  const keys = baselineKeys(prefix)
  const redis = new Redis(redisUrl, { connectionName: 'bench-baseline' })
  const subscriber = new Redis(redisUrl, { connectionName: 'bench-baseline-sub' })
  const bySession = new Map<string, Set<WebSocket>>()
  const channelHead = `${prefix}{`.length
  let version = 1

  subscriber.on('message', (channel: string, frame: string) => {
    const sessionId = channel.slice(channelHead, channel.indexOf('}', channelHead))
    const terminal = frame.startsWith(TERMINATED_FRAME_HEAD)
    for (const ws of bySession.get(sessionId) ?? []) {
      if (ws.readyState !== WebSocket.OPEN) continue
      ws.send(frame)
      if (terminal) ws.close(4001, 'terminated')
    }
  })

  const server = createServer((req, res) => {
    const terminate = /^\/admin\/sessions\/([\w-]+)$/.exec(req.url ?? '')
    if (req.method === 'DELETE' && terminate) {
      req.resume()
      const frame = JSON.stringify({ type: 'session.terminated', reason: 'admin', message: 'Session terminated by administrator', at: new Date().toISOString() })
      redis.publish(keys.channel(terminate[1]!), frame).then(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"terminated":true}'),
        () => res.writeHead(503).end(),
      )
      return
    }
    const m = /^\/api\/switch_platform\/(\d+)$/.exec(req.url ?? '')
    const sessionId = sessionOf(req)
    if (req.method !== 'POST' || !m || !sessionId) {
      res.writeHead(404).end()
      return
    }
    let body = ''
    req.on('data', (c: Buffer) => (body += c))
    req.on('end', () => {
      const id = Number(m[1])
      const platform = { id, name: `Platform ${id}`, type: 'mastodon', instanceUrl: `https://p${id}.example`, isDefault: false }
      const frame = JSON.stringify({
        type: 'platform.switched',
        platform,
        previousPlatform: null,
        version: ++version,
        byTabId: req.headers['x-tab-id'] ?? null,
        at: new Date().toISOString(),
      })
      redis.publish(keys.channel(sessionId), frame).then(
        () => {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ platform, version, message: `Switched to ${platform.name}.` }))
        },
        () => res.writeHead(503).end(),
      )
    })
  })

  const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false, maxPayload: 16 * 1024 })
  wss.on('connection', (ws, req) => {
    const sessionId = sessionOf(req)
    if (!sessionId) return ws.close(4401, 'not authenticated')
    ws.once('message', async (data) => {
      const hello = JSON.parse(data.toString()) as { tabId: string; lastSeq?: number }
      let tabs = bySession.get(sessionId)
      if (!tabs) {
        tabs = new Set()
        bySession.set(sessionId, tabs)
        await subscriber.subscribe(keys.channel(sessionId))
      }
      tabs.add(ws)
      ws.on('close', () => {
        tabs.delete(ws)
        if (tabs.size === 0 && bySession.get(sessionId) === tabs) {
          bySession.delete(sessionId)
          subscriber.unsubscribe(keys.channel(sessionId)).catch(() => {})
        }
      })
      if (hello.lastSeq === undefined) {
        ws.send(JSON.stringify({ type: 'welcome', sessionId, tabId: hello.tabId, seq: 0 }))
        return
      }
      const [[, seq], [, entries]] = (await redis
        .pipeline()
        .get(keys.seq(sessionId))
        .xrange(keys.log(sessionId), `${hello.lastSeq + 1}-0`, '+')
        .exec()) as [[null, string | null], [null, [string, string[]][]]]
      ws.send(JSON.stringify({ type: 'welcome', sessionId, tabId: hello.tabId, seq: Number(seq ?? 0) }))
      for (const [, fields] of entries) ws.send(fields[1]!)
    })
  })

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  let closing: Promise<void> | undefined
  return {
    address: `127.0.0.1:${port}`,
    close() {
      closing ??= (async () => {
        for (const ws of wss.clients) ws.terminate()
        await new Promise<void>((resolve) => wss.close(() => resolve()))
        server.closeAllConnections()
        await new Promise<void>((resolve) => server.close(() => resolve()))
        await Promise.all([redis.quit(), subscriber.quit()]).catch(() => {})
      })()
      return closing
    },
  }
}

/** Appends `count` frames to a session's stream and publishes each, as Tessera's bus does. */
export async function publishBaselineEvents(redis: Redis, prefix: string, sessionId: string, count: number): Promise<void> {
  const keys = baselineKeys(prefix)
  const last = await redis.incrby(keys.seq(sessionId), count)
  const pipeline = redis.pipeline()
  for (let seq = last - count + 1; seq <= last; seq++) {
    const frame = JSON.stringify({ type: 'bench.event', n: seq, note: 'an event the tab missed while it was away', at: new Date().toISOString(), seq })
    pipeline.xadd(keys.log(sessionId), 'MAXLEN', '~', 1000, `${seq}-1`, 'f', frame).publish(keys.channel(sessionId), frame)
  }
  await pipeline.exec()
}
