// The workload and the accounting of the fault runs (faults.system.ts): simulated browsers
// against real API processes (logins, switches, heartbeats, view changes, locks, failed
// logins, admin terminations), tabs that reconnect as the SDK does (backoff, the other node,
// lastSeq), every answer recorded with its time, and afterwards a check of what PostgreSQL
// and the tabs say against what the clients were told.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import postgres from 'postgres'
import { Agent, fetch } from 'undici'
import { FINAL_CLOSE_CODES } from '../../src/realtime/protocol.js'
import { ADMIN_PASSWORD, PASSWORD } from '../helpers/app.js'
import { sleep } from '../helpers/wait.js'
import WebSocket from 'ws'
import { TabClient } from '../helpers/ws.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

export const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', 'accept-language': 'en' }
/** A connection per request: a request refused at connect is told apart from one the server took and dropped. */
const fresh = new Agent({ pipelining: 0 })
const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(Math.random() * items.length)]

/** A webhook receiver that acts on each delivery id once (the idempotency key) and counts repeats. */
export async function webhookReceiver(t: Teardown) {
  const seen = new Map<string, number>()
  let delayMs = 0
  const server = createServer((req, res) => {
    const id = String(req.headers['x-tessera-delivery'])
    req.resume()
    req.on('end', () => {
      setTimeout(() => {
        seen.set(id, (seen.get(id) ?? 0) + 1)
        res.writeHead(204).end()
      }, delayMs)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    seen,
    /** Holds every answer this long (a slow receiver keeps deliveries mid-job). */
    slow(ms: number) {
      delayMs = ms
    },
  }
}

export interface Answer {
  status: number
  json: Record<string, unknown> | null
  /** A network error code when there was no answer. */
  error?: string
}

export interface Op {
  kind: string
  at: number
  node: number
  status: number
  error?: string
  sessionId?: string
  /** The error message of a 5xx. */
  detail?: string
}

export interface Node {
  url: string
  up: boolean
}

/**
 * Opens a socket as a browser would, but gives up on an upgrade left unanswered for 10 s
 * (counted: a client's own timeout, then its backoff, is what gets it back).
 */
export let hungUpgrades = 0
function connectTab(address: string, sid: string): Promise<TabClient> {
  const ws = new WebSocket(`ws://${address}/ws`, {
    headers: { origin: 'http://localhost:3000', ...HEADERS, cookie: `sid=${sid}` },
    handshakeTimeout: 10_000,
  })
  const tab = new TabClient(ws)
  return new Promise<TabClient>((resolve, reject) => {
    ws.once('open', () => resolve(tab))
    ws.once('unexpected-response', (_req, res) => {
      res.resume()
      reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode }))
    })
    ws.once('error', (err) => {
      if (/timed out/i.test(String(err))) hungUpgrades++
      reject(err)
    })
  })
}

/** A tab: a socket that reconnects (other node, backoff with jitter, lastSeq) until its session ends. */

/**
 * After Redis has lost a session's counter and log (R1), its events are numbered afresh from
 * Redis's clock in ms (docs/realtime.md, "Seq, ordering and resume"): a jump up to such a number is the new
 * numbering the protocol announces, not a gap. Any other jump is.
 */
const startsNewNumbering = (seq: number, expected: number) => seq > expected && seq >= 1_000_000_000_000

export class Tab {
  client: TabClient | null = null
  lastSeq = 0
  expected = 0
  closes: number[] = []
  welcomes: { resumed: boolean; node: number; at: number }[] = []
  /** When a session.state resync came. */
  resyncs: number[] = []
  /** SERVICE_UNAVAILABLE answers to its messages while a dependency was down (the contract). */
  unavailable = 0
  gaps: string[] = []
  done = false
  node = 0
  /** Connection attempts that failed, with why. */
  attempts: string[] = []

  constructor(
    readonly browser: Browser,
    readonly tabId: string,
  ) {}

  check(m: { type: string; seq?: number }) {
    if (m.type === 'error') {
      if ((m as { code?: string }).code === 'SERVICE_UNAVAILABLE') this.unavailable++
      else this.gaps.push(`${this.tabId}: error ${JSON.stringify(m).slice(0, 200)}`)
    }
    if (typeof m.seq !== 'number' || m.type === 'welcome') return
    if (m.type === 'session.state') {
      this.resyncs.push(Date.now())
      this.expected = m.seq
    } else if (m.seq !== this.expected + 1 && !startsNewNumbering(m.seq, this.expected)) this.gaps.push(`${this.tabId}: seq ${m.seq} after ${this.expected} (${m.type})`)
    else this.expected = m.seq
    this.lastSeq = Math.max(this.lastSeq, m.seq)
  }

  /** Opens on `node` (or the next one up); resolves once welcomed, or when the session is over. */
  async open(load: Load, node: number, stick = false): Promise<void> {
    for (let attempt = 0; !this.done && !load.closed; attempt++) {
      const n = load.nodeUp(stick ? node : node + attempt)
      const address = load.nodes[n]!.url.replace(/^http:\/\//, '')
      try {
        const client = await connectTab(address, this.browser.sid!)
        const again = this.welcomes.length > 0
        client.send({ type: 'hello', tabId: this.tabId, view: '/home', ...(again ? { lastSeq: this.lastSeq } : {}) })
        // A session that ended meanwhile answers with its terminal event and a final close, never a welcome.
        const welcome = await Promise.race([
          client.type('welcome', 15_000),
          client.closed.then(({ code }) => {
            if (!FINAL_CLOSE_CODES.includes(code)) throw new Error(`closed ${code} before the welcome`)
            return null
          }),
        ])
        if (!welcome) {
          this.closes.push((await client.closed).code)
          load.unauthorized.push({ sessionId: this.browser.sessionId!, at: Date.now(), what: `tab closed ${this.closes.at(-1)} at its hello` })
          this.done = true
          return
        }
        this.client = client
        this.node = n
        this.welcomes.push({ resumed: welcome.resumed === true, node: n, at: Date.now() })
        this.expected = again && welcome.resumed ? this.lastSeq : (welcome.seq as number)
        const start = client.messages.indexOf(welcome)
        for (const m of client.messages.slice(start + 1)) this.check(m)
        client.ws.on('message', (data) => this.check(JSON.parse(data.toString())))
        void client.closed.then(({ code }) => this.onClose(load, code, client))
        return
      } catch (err) {
        const status = (err as { status?: number }).status
        if (this.attempts.length < 20) this.attempts.push(`${n}: ${status ?? String(err).slice(0, 60)}`)
        if (status === 401) {
          // The session ended: every such refusal is checked against PostgreSQL's end reason.
          load.unauthorized.push({ sessionId: this.browser.sessionId!, at: Date.now(), what: 'tab' })
          this.done = true
          return
        }
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 4)) * (0.5 + Math.random()))
      }
    }
  }

  private onClose(load: Load, code: number, client: TabClient) {
    if (this.client !== client) return
    this.client = null
    this.closes.push(code)
    if (FINAL_CLOSE_CODES.includes(code) || this.done || load.closed) {
      this.done = true
      return
    }
    // Going away (1001), cut (1006), resume needed (1013): back on the other node, after a jittered pause.
    void sleep(50 + Math.random() * 250).then(() => this.open(load, this.node + 1))
  }

  send(message: object) {
    const ws = this.client?.ws
    if (ws && ws.readyState === ws.OPEN) ws.send(JSON.stringify(message))
  }
}

export class Browser {
  sid: string | undefined
  csrf: string | undefined
  sessionId: string | undefined
  /** Ended by the workload itself (admin termination, logout): a 401 after that is expected. */
  endedByUs = false
  tabs: Tab[] = []

  constructor(readonly username: string) {}
}

export interface LoadOptions {
  users: { name: string; platformIds: number[] }[]
  /** Users that failed logins are made for (threshold-many each: one alert each). */
  victims: string[]
  failedLoginThreshold: number
  resources: number
}

/** Many browsers against the API nodes, and a record of every answer. */
export class Load {
  readonly ops: Op[] = []
  readonly browsers: Browser[] = []
  readonly unauthorized: { sessionId: string; at: number; what: string }[] = []
  /** Logins answered 200: each must have its session and its login record. */
  readonly logins: string[] = []
  stopped = false
  /** Set by closeAll(): tabs stop reconnecting (stop() only ends the operations; tabs keep coming back). */
  closed = false
  /** How long a request may take before the client gives up on it. */
  timeoutMs = 30_000
  admin = new Browser('admin')
  private victim = 0
  private running: Promise<void>[] = []

  constructor(
    readonly nodes: Node[],
    readonly o: LoadOptions,
  ) {}

  nodeUp(i: number): number {
    for (let k = 0; k < this.nodes.length; k++) {
      const n = (i + k) % this.nodes.length
      if (this.nodes[n]!.up) return n
    }
    return i % this.nodes.length
  }

  async request(
    kind: string,
    b: Browser,
    method: string,
    path: string,
    body?: unknown,
    node = Math.floor(Math.random() * this.nodes.length),
    extra: Record<string, string> = {},
  ): Promise<Answer> {
    const n = this.nodeUp(node)
    const headers: Record<string, string> = { ...HEADERS, ...extra }
    if (b.sid) headers.cookie = `sid=${b.sid}`
    if (b.csrf && method !== 'GET') headers['x-csrf-token'] = b.csrf
    if (body !== undefined) headers['content-type'] = 'application/json'
    const at = Date.now()
    let answer: Answer = { status: 0, json: null }
    // A connection refused by a node that is up (its accept queue full under a burst) is tried again:
    // the request never reached it.
    for (let attempt = 0; attempt < 4 && (attempt === 0 || (answer.error === 'ECONNREFUSED' && this.nodes[n]!.up && !extra['x-request-id'])); attempt++) {
      if (attempt > 0) await sleep(50 * attempt)
      try {
        const res = await fetch(`${this.nodes[n]!.url}${path}`, {
          method,
          headers,
          dispatcher: fresh,
          signal: AbortSignal.timeout(this.timeoutMs),
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        })
        const text = await res.text()
        const sid = res.headers
          .getSetCookie()
          .map((c) => /^sid=([^;]*)/.exec(c)?.[1])
          .find((v) => v !== undefined)
        if (sid) b.sid = sid
        let json: Record<string, unknown> | null = null
        try {
          json = text ? (JSON.parse(text) as Record<string, unknown>) : null
        } catch {}
        answer = { status: res.status, json }
      } catch (err) {
        const e = err as { cause?: { code?: string }; code?: string; name?: string }
        answer = { status: 0, json: null, error: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.code ?? e.name ?? 'error') }
      }
    }
    const detail = answer.status >= 500 ? String((answer.json?.error as { message?: string } | undefined)?.message ?? '') : undefined
    this.ops.push({ kind, at, node: n, status: answer.status, error: answer.error, sessionId: b.sessionId, detail })
    if (answer.status === 401 && b.sessionId && kind !== 'login' && kind !== 'failed login') {
      this.unauthorized.push({ sessionId: b.sessionId, at, what: `${method} ${path}` })
    }
    return answer
  }

  /** A login (retried on the other node when a node refuses the connection), with `tabs` tabs. */
  async login(username: string, tabs: number): Promise<Browser | null> {
    const b = new Browser(username)
    const res = await this.request('login', b, 'POST', '/api/auth/login', { username, password: PASSWORD })
    if (res.status !== 200) return null
    b.csrf = res.json!.csrfToken as string
    b.sessionId = (res.json!.session as { id: string }).id
    this.logins.push(b.sessionId)
    this.browsers.push(b)
    for (let i = 0; i < tabs; i++) {
      const tab = new Tab(b, `${b.sessionId.slice(0, 8)}-${i}`)
      b.tabs.push(tab)
      await tab.open(this, i)
    }
    return b
  }

  async signInAdmin() {
    const b = new Browser('admin')
    const res = await this.request('admin login', b, 'POST', '/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD })
    if (res.status !== 200) throw new Error(`admin sign-in: ${res.status || res.error} ${JSON.stringify(res.json)} (${this.nodes.map((n) => `${n.url} ${n.up}`).join(', ')})`)
    b.csrf = res.json!.csrfToken as string
    b.sessionId = (res.json!.session as { id: string }).id
    this.admin = b
  }

  live(): Browser[] {
    return this.browsers.filter((b) => !b.endedByUs && b.tabs.some((t) => !t.done))
  }

  /** One operation, weighted as users do them. */
  async step() {
    const r = Math.random()
    const b = pick(this.live())
    const user = b && this.o.users.find((u) => u.name === b.username)
    if (!b || !user || r < 0.08) {
      await this.login(pick(this.o.users)!.name, 1 + Math.floor(Math.random() * 2))
    } else if (r < 0.3) {
      const tab = pick(b.tabs.filter((t) => t.client))
      if (!tab) return // every tab of it is reconnecting
      const v = Math.random()
      if (v < 0.5) tab.send({ type: 'heartbeat', view: pick(['/home', '/feed']), lastInputAt: Date.now() })
      else if (v < 0.75) tab.send({ type: 'activity', at: Date.now() })
      else tab.send({ type: 'view', view: pick(['/home', '/feed', '/settings', `/doc/${Math.floor(Math.random() * 20)}`])! })
      this.ops.push({ kind: 'tab input', at: Date.now(), node: tab.node, status: 200 })
    } else if (r < 0.55) {
      await this.request('switch', b, 'POST', `/api/switch_platform/${pick(user.platformIds)}`, {})
    } else if (r < 0.75) {
      const resource = `doc:${Math.floor(Math.random() * this.o.resources)}`
      if (Math.random() < 0.7) await this.request('lock', b, 'POST', '/api/locks', { resource })
      else await this.request('unlock', b, 'DELETE', `/api/locks/${encodeURIComponent(resource)}`)
    } else if (r < 0.85) {
      await this.request('state', b, 'GET', '/api/session_state')
    } else if (r < 0.92) {
      await this.failedLogins()
    } else {
      b.endedByUs = true
      const res = await this.request('terminate', this.admin, 'DELETE', `/admin/sessions/${b.sessionId}`, { reason: 'fault run' })
      if (res.status === 401) await this.signInAdmin().catch(() => {})
    }
  }

  /** Threshold-many wrong passwords for the next victim: one failed-login alert. */
  async failedLogins() {
    const name = this.o.victims[this.victim++ % this.o.victims.length]!
    for (let i = 0; i < this.o.failedLoginThreshold; i++) {
      await this.request('failed login', new Browser(name), 'POST', '/api/auth/login', { username: name, password: 'not-the-password' })
    }
  }

  /** Runs `actors` loops of steps, each at most `perSecond` steps a second, until stop(). */
  start(actors: number, perSecond: number) {
    this.stopped = false
    const every = (actors * 1000) / perSecond
    const actor = async () => {
      while (!this.stopped) {
        const began = Date.now()
        await this.step().catch((err) => this.ops.push({ kind: `threw ${String(err).slice(0, 80)}`, at: Date.now(), node: 0, status: -1 }))
        await sleep(Math.max(0, every - (Date.now() - began)))
      }
    }
    this.running = Array.from({ length: actors }, actor)
  }

  async stop() {
    this.stopped = true
    await Promise.all(this.running)
  }

  tabs(): Tab[] {
    return this.browsers.flatMap((b) => b.tabs)
  }

  closeAll() {
    this.stopped = true
    this.closed = true
    for (const tab of this.tabs()) {
      tab.done = true
      tab.client?.ws.terminate()
    }
  }
}

export interface Accounting {
  lost: string[]
  spurious: string[]
  locks: string[]
  gaps: string[]
  invalid: string[]
  alerts: string[]
  alertRepeats: number
  alertCount: number
}

/**
 * What must hold after a fault, from PostgreSQL, the tabs and the receiver: every login
 * answered 200 has its session and login record; every 401 a client got is for a session
 * PostgreSQL has ended; every lock's owner is a live session and no resource has two; no
 * tab saw a gap or a duplicate; every session live before (and not ended since) is valid
 * now; every alert was delivered, and acted on once.
 */
export async function account(load: Load, databaseUrl: string, hook: { seen: Map<string, number> } | null, before: Browser[]): Promise<Accounting> {
  const sql = postgres(databaseUrl, { max: 2, onnotice: () => {} })
  try {
    const ids = load.logins
    const rows = ids.length
      ? await sql`select s.id, s.status, s.end_reason,
          (select count(*)::int from login_attempts a where a.session_id = s.id and a.success) as attempts
        from sessions s where s.id = any(${ids}::uuid[])`
      : []
    const byId = new Map(rows.map((r) => [r.id as string, r]))
    const lost = ids.filter((id) => !byId.get(id) || byId.get(id)!.attempts !== 1).map((id) => `${id}: ${byId.get(id) ? 'no login record' : 'no session row'}`)
    const unauthorizedIds = [...new Set(load.unauthorized.map((u) => u.sessionId))]
    const ended = unauthorizedIds.length ? await sql`select id, status, end_reason from sessions where id = any(${unauthorizedIds}::uuid[])` : []
    const endedById = new Map(ended.map((r) => [r.id as string, r]))
    const spurious = load.unauthorized
      .filter((u) => endedById.get(u.sessionId)?.status === 'active' || !endedById.get(u.sessionId)?.end_reason)
      .map((u) => `${u.sessionId}: 401 on ${u.what} while PostgreSQL has it ${endedById.get(u.sessionId)?.status ?? 'missing'}`)
    const lockRows = await sql`select l.resource, l.session_id, s.status from locks l left join sessions s on s.id = l.session_id`
    const locks = lockRows.filter((r) => r.status !== 'active').map((r) => `${r.resource} held by ${r.session_id} (${r.status})`)
    const counts = new Map<string, number>()
    for (const r of lockRows) counts.set(r.resource as string, (counts.get(r.resource as string) ?? 0) + 1)
    for (const [resource, n] of counts) if (n > 1) locks.push(`${resource} held ${n} times`)
    const gaps = load.tabs().flatMap((t) => t.gaps)
    const invalid: string[] = []
    const stillActive = before.length ? await sql`select id from sessions where id = any(${before.map((b) => b.sessionId!)}::uuid[]) and status = 'active'` : []
    const activeIds = new Set(stillActive.map((r) => r.id as string))
    for (const b of before) {
      if (!activeIds.has(b.sessionId!)) continue // ended since, for a reason PostgreSQL names (checked above)
      const res = await load.request('validate after', b, 'GET', '/api/session_state')
      if (res.status !== 200) invalid.push(`${b.sessionId}: ${res.status} ${res.error ?? JSON.stringify(res.json).slice(0, 120)}`)
    }
    const alertRows = await sql`select id from alerts where type = 'failed_login_threshold'`
    const alerts: string[] = []
    let alertRepeats = 0
    if (hook) {
      for (const r of alertRows) if (!hook.seen.has(`alert-${r.id}`)) alerts.push(`alert-${r.id} not delivered`)
      for (const n of hook.seen.values()) alertRepeats += n - 1
    }
    return { lost, spurious, locks, gaps, invalid, alerts, alertRepeats, alertCount: alertRows.length }
  } finally {
    await sql.end({ timeout: 1 })
  }
}
