// A small load balancer in Node (node:http and node:net only), for the two-node check
// without Docker: `npm run demo:cluster` and test/system/cluster.test.ts. It does what
// deploy/haproxy.cfg does in the Docker stack, in miniature:
//
// - every request and every WebSocket upgrade goes to the next backend in turn (round
//   robin over those whose /readyz answers 200; none ready: over those that answer at
//   all, so what works without PostgreSQL still works); no sticky sessions;
// - an upgrade is tunnelled byte for byte once the backend accepts it;
// - a backend that refuses the connection (stopped, or stopping on SIGTERM) is skipped and
//   the request or upgrade goes to the next one, which is what makes a restart invisible;
// - X-Forwarded-For is set to the client's address (whatever the client sent is dropped),
//   so the nodes run with TRUST_PROXY=loopback.
//
// It is a development and test tool: no TLS, no limits, bodies buffered in memory.
import { once } from 'node:events'
import { createServer, request, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'

export interface Backend {
  name: string
  host: string
  port: number
  /** Last /readyz answered 200. */
  ready: boolean
  /** Last /readyz got any HTTP answer (the process is up). */
  live: boolean
}

/** Where each request and upgrade went, newest last (the last 1,000). */
export interface Routed {
  kind: 'http' | 'upgrade'
  method: string
  path: string
  backend: string
}

export interface BalancerOptions {
  host?: string
  port?: number
  /** How often each backend's /readyz is asked (default 1 s). */
  healthIntervalMs?: number
  healthPath?: string
}

/** Headers that belong to one hop and are not forwarded (RFC 9110, 7.6.1). */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'])

export class Balancer {
  readonly backends: Backend[] = []
  readonly routed: Routed[] = []
  private turn = 0
  private readonly sockets = new Set<Socket>()
  private timer: NodeJS.Timeout | undefined

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly options: Required<Pick<BalancerOptions, 'healthIntervalMs' | 'healthPath'>>,
  ) {}

  static async start(options: BalancerOptions = {}): Promise<Balancer> {
    const server = createServer()
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
    await once(server, 'listening')
    const address = server.address() as { address: string; port: number }
    const host = address.address.includes(':') ? `[${address.address}]` : address.address
    const balancer = new Balancer(server, `http://${host}:${address.port}`, {
      healthIntervalMs: options.healthIntervalMs ?? 1000,
      healthPath: options.healthPath ?? '/readyz',
    })
    server.on('connection', (socket) => balancer.track(socket))
    server.on('request', (req, res) => void balancer.forward(req, res))
    server.on('upgrade', (req, socket, head) => balancer.tunnel(req, socket as Socket, head))
    balancer.timer = setInterval(() => void balancer.checkAll(), balancer.options.healthIntervalMs)
    balancer.timer.unref()
    return balancer
  }

  /** Adds a backend (`http://host:port`) and asks its /readyz at once. */
  async add(name: string, url: string): Promise<Backend> {
    const u = new URL(url)
    const backend: Backend = { name, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port), ready: false, live: false }
    this.backends.push(backend)
    await this.check(backend)
    return backend
  }

  private track(socket: Socket) {
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
  }

  private async check(backend: Backend) {
    try {
      const res = await fetch(`http://${backend.host.includes(':') ? `[${backend.host}]` : backend.host}:${backend.port}${this.options.healthPath}`, {
        signal: AbortSignal.timeout(2000),
      })
      await res.arrayBuffer()
      backend.live = true
      backend.ready = res.status === 200
    } catch {
      backend.live = false
      backend.ready = false
    }
  }

  private async checkAll() {
    await Promise.all(this.backends.map((b) => this.check(b)))
  }

  /** The backends to try, in order: round robin from the next one, ready ones first, then live ones. */
  private candidates(): Backend[] {
    const n = this.backends.length
    if (n === 0) return []
    const start = this.turn++ % n
    const rotated = [...this.backends.slice(start), ...this.backends.slice(0, start)]
    const ready = rotated.filter((b) => b.ready)
    if (ready.length > 0) return [...ready, ...rotated.filter((b) => !b.ready && b.live)]
    const live = rotated.filter((b) => b.live)
    // Nothing answered the last check: try them all (a check may simply be late).
    return live.length > 0 ? live : rotated
  }

  private record(entry: Routed) {
    this.routed.push(entry)
    if (this.routed.length > 1000) this.routed.splice(0, this.routed.length - 1000)
  }

  private forwardedHeaders(req: IncomingMessage): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (!hopByHop.has(name) && value !== undefined) headers[name] = value
    }
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? ''
    headers['x-forwarded-proto'] = 'http'
    if (req.headers.host) headers['x-forwarded-host'] = req.headers.host
    return headers
  }

  private async forward(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body = Buffer.concat(chunks)
    const headers = this.forwardedHeaders(req)
    if (body.length > 0) headers['content-length'] = String(body.length)
    for (const backend of this.candidates()) {
      const answered = await new Promise<boolean>((resolve) => {
        const upstream = request({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers, agent: false })
        upstream.on('response', (answer) => {
          this.record({ kind: 'http', method: req.method ?? 'GET', path: req.url ?? '/', backend: backend.name })
          const out: OutgoingHttpHeaders = {}
          for (const [name, value] of Object.entries(answer.headers)) {
            if (name !== 'connection' && name !== 'keep-alive' && value !== undefined) out[name] = value
          }
          out['x-tessera-backend'] = backend.name
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, out)
          answer.pipe(res)
          answer.on('error', () => res.destroy())
          resolve(true)
        })
        // No answer at all (refused, or closed before a status line): the next backend.
        upstream.on('error', () => resolve(false))
        upstream.end(body)
      })
      if (answered) return
      backend.ready = false
    }
    if (!res.headersSent) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
      res.end(JSON.stringify({ error: { code: 'SERVICE_UNAVAILABLE', message: 'No Tessera node answers.' } }))
    }
  }

  private tunnel(req: IncomingMessage, client: Socket, head: Buffer) {
    const headers = this.forwardedHeaders(req)
    const lines = [`${req.method} ${req.url} HTTP/1.1`]
    for (const [name, value] of Object.entries(headers)) {
      for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`)
    }
    lines.push('connection: Upgrade', `upgrade: ${req.headers.upgrade ?? 'websocket'}`)
    const preamble = `${lines.join('\r\n')}\r\n\r\n`
    const candidates = this.candidates()
    client.on('error', () => client.destroy())
    const attempt = (i: number) => {
      const backend = candidates[i]
      if (!backend) {
        client.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
        return
      }
      const upstream = connect(backend.port, backend.host)
      const failed = () => {
        upstream.destroy()
        backend.ready = false
        attempt(i + 1)
      }
      upstream.once('error', failed)
      upstream.once('connect', () => {
        upstream.off('error', failed)
        this.track(upstream)
        this.record({ kind: 'upgrade', method: req.method ?? 'GET', path: req.url ?? '/', backend: backend.name })
        upstream.write(preamble)
        if (head.length > 0) upstream.write(head)
        upstream.pipe(client)
        client.pipe(upstream)
        const close = () => {
          upstream.destroy()
          client.destroy()
        }
        upstream.on('error', close)
        upstream.on('close', close)
        client.on('close', close)
      })
    }
    attempt(0)
  }

  async close() {
    clearInterval(this.timer)
    const closed = new Promise((resolve) => this.server.close(resolve))
    for (const socket of this.sockets) socket.destroy()
    await closed
  }
}
