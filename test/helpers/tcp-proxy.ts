// A TCP proxy in front of the real PostgreSQL or Redis, so that a test can hold back or cut
// one connection's traffic at the moment it chooses: real servers, real clients, a real
// network fault. Nothing is mocked; the bytes are forwarded as they are.
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** One proxied connection. */
export interface Pipe {
  /** The application's side. */
  client: Socket
  /** The real server's side. */
  server: Socket
  /** What the application has sent on it so far (first 64 KiB), to tell connections apart. */
  sent: string
  /** What is held back from the server, while held. */
  held: Buffer[] | null
}

type HoldRule = { match: (pipe: Pipe, chunk: string) => boolean; engaged: (pipe: Pipe) => void }

export class TcpProxy {
  private readonly pipes = new Set<Pipe>()
  private rule: HoldRule | null = null

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards to `target`; closed when the test ends. */
  static async start(t: Teardown, target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const proxy = new TcpProxy(server, (server.address() as { port: number }).port)
    server.on('connection', (client) => proxy.accept(client, target))
    t.teardown(() => proxy.close())
    return proxy
  }

  /** A proxy in front of the server a `redis://` or `postgres://` URL names. */
  static to(t: Teardown, url: string): Promise<TcpProxy> {
    const u = new URL(url)
    return TcpProxy.start(t, { host: u.hostname, port: Number(u.port || (u.protocol === 'redis:' ? 6379 : 5432)) })
  }

  /** A URL of the same kind as `url`, pointing at this proxy. */
  url(url: string): string {
    const u = new URL(url)
    u.hostname = '127.0.0.1'
    u.port = String(this.port)
    return u.toString()
  }

  private accept(client: Socket, target: { host: string; port: number }) {
    const server = connect(target.port, target.host)
    const pipe: Pipe = { client, server, sent: '', held: null }
    this.pipes.add(pipe)
    client.on('data', (chunk: Buffer) => this.forward(pipe, chunk))
    server.on('data', (chunk: Buffer) => client.write(chunk))
    const end = () => {
      this.pipes.delete(pipe)
      client.destroy()
      server.destroy()
    }
    for (const s of [client, server]) {
      s.on('error', end)
      s.on('close', end)
    }
  }

  private forward(pipe: Pipe, chunk: Buffer) {
    if (pipe.sent.length < 65_536) pipe.sent += chunk.toString('latin1')
    if (pipe.held) {
      pipe.held.push(chunk)
      return
    }
    if (this.rule?.match(pipe, chunk.toString('latin1'))) {
      pipe.held = [chunk]
      this.rule.engaged(pipe)
      return
    }
    pipe.server.write(chunk)
  }

  /**
   * From the first chunk an application connection sends for which `match` is true, holds
   * back everything that connection sends (the server neither sees nor answers it) until
   * `release()`. Resolves with the connection when that first happens.
   */
  hold(match: (pipe: Pipe, chunk: string) => boolean): Promise<Pipe> {
    return new Promise((resolve) => {
      this.rule = { match, engaged: resolve }
    })
  }

  /** The open connections `match` picks. */
  connections(match: (pipe: Pipe) => boolean): Pipe[] {
    return [...this.pipes].filter(match)
  }

  /** Everything held back so far, over every connection (as latin1): to wait until a given query waits. */
  heldText(): string {
    let text = ''
    for (const pipe of this.pipes) for (const chunk of pipe.held ?? []) text += chunk.toString('latin1')
    return text
  }

  /** Forwards everything held back, in order, and stops holding. */
  release() {
    this.rule = null
    for (const pipe of this.pipes) {
      const held = pipe.held
      pipe.held = null
      for (const chunk of held ?? []) pipe.server.write(chunk)
    }
  }

  /** Cuts the matching connections, as a network failure would; returns how many. */
  drop(match: (pipe: Pipe) => boolean): number {
    let n = 0
    for (const pipe of [...this.pipes]) {
      if (!match(pipe)) continue
      n++
      pipe.client.destroy()
      pipe.server.destroy()
      this.pipes.delete(pipe)
    }
    return n
  }

  async close() {
    this.release()
    this.drop(() => true)
    await new Promise((resolve) => this.server.close(resolve))
  }
}

/** A node's Redis subscriber connection (it names itself `tessera-subscriber`). */
export const isSubscriber = (pipe: Pipe) => pipe.sent.includes('tessera-subscriber')

/** A chunk that carries a SUBSCRIBE or SSUBSCRIBE (of `channel`, when given) — as RESP, not the word in a name. */
export const subscribes = (channel?: string) => (_pipe: Pipe, chunk: string) =>
  /\$9\r\nsubscribe\r\n|\$10\r\nssubscribe\r\n/i.test(chunk) && (channel === undefined || chunk.includes(channel))

/** A chunk that carries a PING (as RESP). */
export const pings = (text: string) => /\$4\r\nping\r\n/i.test(text)

/**
 * PostgreSQL traffic of a hello after its step in Redis: the insert of its `session.view`
 * audit row (Audit.record, grouped). postgres.js sends the statement's Parse and waits for
 * its description before the Bind that carries the session's id, unless the connection
 * has prepared it before.
 */
export const recordsView = (text: string, sessionId: string) => text.includes(sessionId) || text.includes('insert into audit_events')
