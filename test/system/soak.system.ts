// The soak (quality.md R6): a real Tessera process under minutes of churn from many
// simulated users — logins, tabs with hello/heartbeat/activity/view, platform switches,
// locks, logouts, logout-all, admin terminations, reconnects with lastSeq, idle expiries.
// Its RSS (read right after a full collection, through the inspector) and the Redis
// memory of its key prefix must stay flat after the warm-up, no answer may be a 5xx and no
// tab may see a protocol error; every sign-out a client saw (a 401, a refused tab, a
// terminal close) must match the session's end in PostgreSQL (else it is a spurious
// sign-out); the Redis key count's trend must be flat; once every session has ended
// and the workers have run, every key of the prefix has a TTL or an owner.
//
// `npm run test:system` runs it (not `npm test`: it takes minutes). SOAK_SECONDS sets the
// duration (default 600); below MIN_JUDGED_SECONDS the run only reports its figures.
// SOAK_SAMPLES=<file> writes every 5 s sample (memory, keys by kind, load) there as JSON.
import { readFileSync, writeFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import t from 'tap'
import { ADMIN_PASSWORD, build, PASSWORD, type TestApp } from '../helpers/app.js'
import { type Collector, collectorOf, INSPECT_ARG } from '../helpers/inspector.js'
import { spawnTessera, type TesseraProcess } from '../helpers/process.js'
import { sleep, until } from '../helpers/wait.js'
import { openTab, type TabClient } from '../helpers/ws.js'

const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 600)
/** Operations started per second, across all actors. */
const RATE = Number(process.env.SOAK_RATE ?? 20)
const ACTORS = 8
/** Live sessions the churn keeps up: whenever fewer are live, the next operation is a login. */
const LIVE_SESSIONS = 30
const USERS = 30
const SAMPLE_EVERY_MS = 5000
const PROGRESS_EVERY_MS = Math.min(30_000, Math.max(10_000, (SOAK_SECONDS * 1000) / 10))
/**
 * How long it takes for every retention to fill: ended sessions' traces live
 * EVENT_LOG_TTL_SECONDS, the job history keeps the last 100 runs of a once-a-second job.
 * The warm-up is at least this long, and shorter runs are not judged on flatness.
 */
const EVENT_LOG_TTL_SECONDS = 30
const RETENTION_FILLED_SECONDS = 120
const MIN_JUDGED_SECONDS = RETENTION_FILLED_SECONDS * 2.5
const IDLE = { idleAfterSeconds: 6, idleWarningSeconds: 6, idleTimeoutSeconds: 15 }
const HEADERS = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', 'accept-language': 'en' }
/** Close codes a tab may see: ours (1000, 1005, 1006 for a cut), the terminal ones, and 1001 at shutdown. */
const EXPECTED_CLOSES = new Set([1000, 1005, 1006, 4001, 4002, 4003])

const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(Math.random() * items.length)]
/**
 * The growth over the run that the load does not explain: a least-squares fit of
 * y = a + b₁·load₁ + … + c·t over the samples, and c times the time they span, as a share
 * of the mean. Redis rightly holds what live sessions and tabs need and what recently ended
 * sessions leave for EVENT_LOG_TTL_SECONDS; how many there are swings with the churn and the
 * machine's speed, and that is not a leak.
 */
function growthBeyondLoad(points: { t: number; loads: number[]; y: number }[]): number {
  const rows = points.map((p) => [1, ...p.loads, p.t])
  const n = rows[0]!.length
  // The normal equations, solved by Gaussian elimination with partial pivoting.
  const m = Array.from({ length: n }, (_, i) => [
    ...Array.from({ length: n }, (_, j) => rows.reduce((sum, r) => sum + r[i]! * r[j]!, 0)),
    rows.reduce((sum, r, k) => sum + r[i]! * points[k]!.y, 0),
  ])
  for (let col = 0; col < n; col++) {
    const pivot = m.slice(col).reduce((best, row, i) => (Math.abs(row[col]!) > Math.abs(m[best]![col]!) ? col + i : best), col)
    ;[m[col], m[pivot]] = [m[pivot]!, m[col]!]
    for (let r = 0; r < n; r++) {
      if (r === col || m[col]![col] === 0) continue
      const f = m[r]![col]! / m[col]![col]!
      for (let c = col; c <= n; c++) m[r]![c]! -= f * m[col]![c]!
    }
  }
  const last = n - 1
  const perSecond = m[last]![last] === 0 ? 0 : m[last]![n]! / m[last]![last]!
  const span = Math.max(...points.map((p) => p.t)) - Math.min(...points.map((p) => p.t))
  const mean = points.reduce((sum, p) => sum + p.y, 0) / points.length
  return ((perSecond * span) / mean) * 100
}

const median = (values: number[]) => {
  const s = [...values].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`

/** What went wrong during the run: the test fails when any list is not empty. */
const problems = { serverErrors: [] as string[], unexpected: [] as string[], protocol: [] as string[] }
const note = (list: string[], what: string) => {
  if (list.length < 50) list.push(what)
}
/**
 * Every sign-out a client saw: a 401, a refused tab, a terminal close. Each is checked against
 * the session's end in PostgreSQL afterwards: one without a matching ending is a spurious
 * sign-out, the worst failure of this product.
 */
const signOuts: { sessionId: string; at: number; what: string; code?: number }[] = []
/** The end reasons each terminal close code stands for (protocol.ts TERMINAL_CLOSE). */
const CLOSE_REASONS: Record<number, (reason: string) => boolean> = {
  4001: (r) => r !== 'logout' && r !== 'idle_timeout' && r !== 'lifetime',
  4002: (r) => r === 'idle_timeout' || r === 'lifetime',
  4003: (r) => r === 'logout',
}
const counts = new Map<string, number>()
const count = (what: string) => counts.set(what, (counts.get(what) ?? 0) + 1)

interface SimUser {
  name: string
  platformIds: number[]
  browsers: Set<Browser>
}

/** One tab of a browser: a socket, its tabId and the seq of the last logged event it got. */
interface SimTab {
  tabId: string
  client: TabClient
  lastSeq: number
  /** We closed it (a reconnect or closing the tab): its close is not news. */
  leaving: boolean
}

/** One browser of one user: a cookie jar over fetch against the process, and its tabs. */
class Browser {
  sid: string | undefined
  csrf: string | undefined
  sessionId: string | undefined
  ended = false
  /** Sends only bare heartbeats: it goes idle, is warned and expires with its tabs open. */
  quiet = false
  readonly tabs = new Set<SimTab>()
  private tabNo = 0

  constructor(
    readonly base: string,
    readonly user: SimUser | null,
  ) {}

  async request(action: string, method: string, path: string, body?: unknown, allowed: number[] = [200]) {
    const headers: Record<string, string> = { ...HEADERS }
    if (this.sid) headers.cookie = `sid=${this.sid}`
    if (this.csrf && method !== 'GET') headers['x-csrf-token'] = this.csrf
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${this.base}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
    const text = await res.text()
    const sid = res.headers
      .getSetCookie()
      .map((c) => /^sid=([^;]*)/.exec(c)?.[1])
      .find((v) => v !== undefined)
    if (sid !== undefined) this.sid = sid || undefined
    count(`${action} ${res.status}`)
    if (res.status >= 500) note(problems.serverErrors, `${method} ${path}: ${res.status} ${text.slice(0, 200)}`)
    else if (res.status === 401) {
      this.ended = true
      if (this.sessionId && action !== 'login') signOuts.push({ sessionId: this.sessionId, at: Date.now(), what: `${action}: ${method} ${path}` })
    } else if (!allowed.includes(res.status)) note(problems.unexpected, `${method} ${path}: ${res.status} ${text.slice(0, 200)}`)
    let json: Record<string, unknown> | null = null
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : null
    } catch {
      note(problems.unexpected, `${method} ${path}: not JSON: ${text.slice(0, 100)}`)
    }
    return { status: res.status, json }
  }

  async login(username: string, password: string) {
    const res = await this.request('login', 'POST', '/api/auth/login', { username, password }, [200])
    if (res.status === 200) {
      this.csrf = res.json!.csrfToken as string
      this.sessionId = (res.json!.session as { id: string }).id
      this.ended = false
    }
    return res.status === 200
  }

  /** Opens a tab (or reopens `tabId` after `lastSeq`) and checks every frame it gets. */
  async open(address: string, again?: SimTab): Promise<SimTab | null> {
    if (!this.sid || this.ended) return null
    const tabId = again?.tabId ?? `${this.sessionId!.slice(0, 8)}-${++this.tabNo}`
    const hello = { tabId, view: '/home', ...(again ? { lastSeq: again.lastSeq } : {}) }
    let opened: Awaited<ReturnType<typeof openTab>>
    try {
      opened = await openTab(address, this.sid, hello, { headers: HEADERS })
    } catch (err) {
      const status = (err as { status?: number }).status
      count(`tab refused ${status ?? 'error'}`)
      if (status !== undefined && status >= 500) note(problems.serverErrors, `upgrade: ${status}`)
      else if (status === 401) {
        this.ended = true
        signOuts.push({ sessionId: this.sessionId!, at: Date.now(), what: 'tab refused' })
      }
      else if (status === undefined && !/closed before|no matching message/.test(String(err))) note(problems.protocol, `open: ${String(err).slice(0, 300)}`)
      return null
    }
    const { tab: client, welcome } = opened
    count(again ? (welcome.resumed ? 'resumed' : 'resynced') : 'tab opened')
    if (welcome.sessionId !== this.sessionId) note(problems.protocol, `${tabId}: welcomed into session ${welcome.sessionId}, signed in as ${this.sessionId}`)
    const tab: SimTab = { tabId, client, lastSeq: 0, leaving: false }
    // Every logged event after the welcome comes once, in seq order, without a gap.
    let expected = again && welcome.resumed ? again.lastSeq : (welcome.seq as number)
    const check = (m: { type: string; seq?: number }) => {
      if (m.type === 'error') note(problems.protocol, `${tabId}: ${JSON.stringify(m).slice(0, 200)}`)
      if (typeof m.seq !== 'number' || m.type === 'welcome') return
      if (m.type === 'session.state') expected = m.seq
      else if (m.seq !== expected + 1) note(problems.protocol, `${tabId}: seq ${m.seq} after ${expected} (${m.type})`)
      else expected = m.seq
      tab.lastSeq = Math.max(tab.lastSeq, m.seq)
    }
    const start = client.messages.indexOf(welcome)
    for (const m of client.messages.slice(start + 1)) check(m)
    client.ws.on('message', (data) => check(JSON.parse(data.toString())))
    tab.lastSeq = Math.max(tab.lastSeq, expected)
    this.tabs.add(tab)
    void client.closed.then(({ code }) => {
      this.tabs.delete(tab)
      count(`close ${code}`)
      if (code === 4001 || code === 4002 || code === 4003) {
        this.ended = true
        const last = client.messages.at(-1) as { type?: string } | undefined
        signOuts.push({ sessionId: this.sessionId!, at: Date.now(), what: `tab closed ${code} after ${last?.type ?? 'nothing'}`, code })
      }
      if (!tab.leaving && !EXPECTED_CLOSES.has(code)) note(problems.protocol, `${tabId}: closed ${code}`)
    })
    return tab
  }

  send(tab: SimTab, message: object) {
    if (tab.client.ws.readyState === tab.client.ws.OPEN) tab.client.send(message)
  }

  closeTabs(cut = false) {
    for (const tab of this.tabs) {
      tab.leaving = true
      if (cut) tab.client.ws.terminate()
      else tab.client.ws.close()
    }
  }
}

/** Resident set size of a process, from /proc (bytes). */
function rssOf(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kb) * 1024
}

/** Every key of the prefix (the shared Redis holds other prefixes too). */
async function keysOf(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}

/** A key's name with its ids taken out, so keys of one kind group together. */
const kindOf = (key: string, prefix: string) =>
  key
    .slice(prefix.length)
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/[0-9a-f]{64}/g, '<hash>')
    .replace(/\d+/g, 'N')

interface Sample {
  at: number
  rss: number
  redisBytes: number
  bullBytes: number
  keys: number
  liveSessions: number
  tabs: number
  /** Sessions whose traces Redis rightly holds: live ones and those ended within the event log's TTL (from PostgreSQL). */
  traced: number
  /** Keys and bytes by kind of key (kindOf). */
  kinds: Map<string, { n: number; bytes: number }>
}

async function measure(app: TestApp, child: TesseraProcess, collector: Collector, start: number, liveSessions: number, tabs: number): Promise<Sample> {
  const { redis } = app.resources
  const { prefix } = app
  const [{ traced }] = (await app.ctx.database.sql`
    select count(*)::int as traced from sessions
    where status = 'active' or ended_at > now() - make_interval(secs => ${EVENT_LOG_TTL_SECONDS + 5})`) as unknown as [{ traced: number }]
  const keys = await keysOf(redis, prefix)
  let redisBytes = 0
  let bullBytes = 0
  const kinds = new Map<string, { n: number; bytes: number }>()
  for (let i = 0; i < keys.length; i += 500) {
    const slice = keys.slice(i, i + 500)
    const pipeline = redis.pipeline()
    for (const key of slice) pipeline.memory('USAGE', key)
    const replies = (await pipeline.exec()) ?? []
    replies.forEach(([, bytes], j) => {
      const n = Number(bytes ?? 0)
      redisBytes += n
      if (slice[j]!.startsWith(`${prefix}{bull}:`)) bullBytes += n
      const kind = kindOf(slice[j]!, prefix)
      const k = kinds.get(kind) ?? { n: 0, bytes: 0 }
      k.n++
      k.bytes += n
      kinds.set(kind, k)
    })
  }
  // RSS right after a full collection: sampled anywhere in the collector's cycle it swung by ±25 %.
  await collector.collect()
  return { at: (Date.now() - start) / 1000, rss: rssOf(child.child.pid!), redisBytes, bullBytes, keys: keys.length, liveSessions, tabs, traced, kinds }
}

t.test(`soak: ${SOAK_SECONDS} s of churn at ${RATE} operations/s (R6)`, { timeout: (SOAK_SECONDS + 600) * 1000 }, async (t) => {
  const app: TestApp = await build(t)
  const redis = app.resources.redis
  const prefix = app.prefix
  const users: SimUser[] = []
  for (let i = 0; i < USERS; i++) {
    const name = `soak${i}`
    const { platformIds } = await app.user(name, { platforms: ['Mastodon', 'Pixelfed', 'Elsewhere'] })
    users.push({ name, platformIds, browsers: new Set() })
  }
  const child = await spawnTessera(t, app, {
    ROLE: 'all',
    LOGIN_RATE_LIMIT: '1000000/min',
    API_RATE_LIMIT: '1000000/min',
    EVENT_LOG_TTL_SECONDS: String(EVENT_LOG_TTL_SECONDS),
    ACTIVITY_FLUSH_INTERVAL_SECONDS: '1',
    SESSION_CLEANUP_INTERVAL_SECONDS: '1',
    SESSION_HEARTBEAT_INTERVAL_SECONDS: '5',
  }, [INSPECT_ARG])
  const address = child.url.replace(/^http:\/\//, '')
  const collector = await collectorOf(child.output)
  t.teardown(() => collector.close())

  // The admin: shortens the idle rules for everyone, then watches the live feed all along.
  let admin = new Browser(child.url, null)
  t.ok(await admin.login('admin', ADMIN_PASSWORD), 'the admin signs in')
  t.equal((await admin.request('settings', 'PUT', '/admin/sessions/config', IDLE)).status, 200, 'idle rules shortened')
  let adminTab: SimTab | null = null
  const adminSignIn = async () => {
    admin = new Browser(child.url, null)
    if (!(await admin.login('admin', ADMIN_PASSWORD))) return
    adminTab = await admin.open(address)
    if (adminTab) admin.send(adminTab, { type: 'admin.subscribe' })
  }
  await adminSignIn()
  t.ok(adminTab, 'the admin feed is open')

  const browsers = () => users.flatMap((u) => [...u.browsers])
  const live = () => browsers().filter((b) => !b.ended)
  const busy = () => live().filter((b) => !b.quiet)
  const withTabs = () => live().filter((b) => b.tabs.size > 0)
  const forget = (b: Browser) => b.user?.browsers.delete(b)

  // A login (a few with a wrong password) in a new browser with one or two tabs.
  const login = async () => {
    const user = pick(users)!
    // Browsers whose session ended (terminated, expired, logged out elsewhere) are done with.
    for (const b of user.browsers) if (b.ended && b.tabs.size === 0) user.browsers.delete(b)
    if (user.browsers.size >= 4) return
    const b = new Browser(child.url, user)
    b.quiet = Math.random() < 0.2
    const wrong = Math.random() < 0.05
    if (!(await b.login(user.name, wrong ? 'not-the-password' : PASSWORD))) return
    user.browsers.add(b)
    const n = 1 + Math.floor(Math.random() * 2)
    for (let i = 0; i < n; i++) await b.open(address)
  }

  // Weighted actions; each picks its browser and does one thing, as a user would.
  const actions: [number, string, () => Promise<void>][] = [
    [
      8,
      'open tab',
      async () => {
        const b = pick(live())
        if (b && b.tabs.size < 3) await b.open(address)
      },
    ],
    [
      5,
      'close tab',
      async () => {
        const b = pick(withTabs())
        const tab = b && pick([...b.tabs])
        if (!tab) return
        tab.leaving = true
        await tab.client.close()
      },
    ],
    [
      8,
      'reconnect',
      async () => {
        const b = pick(withTabs())
        const tab = b && pick([...b.tabs])
        if (!b || !tab) return
        tab.leaving = true
        const cut = Math.random() < 0.5
        if (cut) tab.client.ws.terminate()
        else tab.client.ws.close()
        await tab.client.closed
        await sleep(Math.random() * 500)
        await b.open(address, tab)
      },
    ],
    [
      20,
      'tab input',
      async () => {
        const b = pick(withTabs())
        const tab = b && pick([...b.tabs])
        if (!b || !tab) return
        const r = b.quiet ? 0.5 : Math.random()
        if (r < 0.4) b.send(tab, { type: 'heartbeat', view: tab.lastSeq % 2 ? '/home' : '/feed', lastInputAt: Date.now() })
        else if (r < 0.55) b.send(tab, { type: 'heartbeat' })
        else if (r < 0.8) b.send(tab, { type: 'activity', at: Date.now() })
        else b.send(tab, { type: 'view', view: pick(['/home', '/feed', '/settings', `/doc/${Math.floor(Math.random() * 20)}`])! })
      },
    ],
    [
      12,
      'switch',
      async () => {
        const b = pick(busy())
        if (b) await b.request('switch', 'POST', `/api/switch_platform/${pick(b.user!.platformIds)}`, undefined, [200])
      },
    ],
    [
      5,
      'state',
      async () => {
        const b = pick(busy())
        if (b) await b.request('state', 'GET', '/api/session_state')
      },
    ],
    [
      8,
      'lock',
      async () => {
        const b = pick(busy())
        if (!b) return
        const resource = `doc:${Math.floor(Math.random() * 40)}`
        if (Math.random() < 0.6) await b.request('lock', 'POST', '/api/locks', { resource }, [200, 201, 409])
        else await b.request('unlock', 'DELETE', `/api/locks/${encodeURIComponent(resource)}`, undefined, [204, 403, 404])
      },
    ],
    [
      4,
      'logout',
      async () => {
        const b = pick(live())
        if (!b) return
        await b.request('logout', 'POST', '/api/auth/logout', undefined, [204])
        forget(b)
      },
    ],
    [
      1,
      'logout-all',
      async () => {
        const b = pick(live())
        if (!b) return
        await b.request('logout-all', 'POST', '/api/auth/logout-all', {}, [200])
        for (const other of b.user!.browsers) other.ended = true
      },
    ],
    [
      2,
      'admin terminate',
      async () => {
        const b = pick(live())
        if (!b?.sessionId) return
        const res = await admin.request('terminate', 'DELETE', `/admin/sessions/${b.sessionId}`, { reason: 'soak' }, [200, 409])
        if (res.status === 401) await adminSignIn()
      },
    ],
    [
      2,
      'abandon',
      async () => {
        // Closes the browser without signing out: the idle sweep ends the session.
        const b = pick(live())
        if (!b) return
        b.closeTabs(Math.random() < 0.5)
        forget(b)
      },
    ],
  ]
  const totalWeight = actions.reduce((n, [w]) => n + w, 0)
  const choose = () => {
    let r = Math.random() * totalWeight
    for (const a of actions) {
      r -= a[0]
      if (r < 0) return a
    }
    return actions[0]!
  }

  const start = Date.now()
  const stopAt = start + SOAK_SECONDS * 1000
  let ops = 0
  const tabCount = () => browsers().reduce((n, b) => n + b.tabs.size, 0)
  const samples: Sample[] = []
  const sampler = (async () => {
    let lastProgress = 0
    while (Date.now() < stopAt) {
      const s = await measure(app, child, collector, start, live().length, tabCount())
      samples.push(s)
      if (Date.now() - lastProgress >= PROGRESS_EVERY_MS || samples.length === 1) {
        lastProgress = Date.now()
        // On stderr, which tap passes through as it comes: a subtest's comments wait for its end.
        console.error(
          `# soak ${s.at.toFixed(0).padStart(4)} s  ops ${ops}  rss ${mib(s.rss)}  redis ${mib(s.redisBytes)} (bull ${mib(s.bullBytes)})  keys ${s.keys}  sessions ${s.liveSessions} (with traces ${s.traced})  tabs ${s.tabs}`,
        )
      }
      await sleep(SAMPLE_EVERY_MS)
    }
  })()
  // The admin's own input, so that the short idle rules do not end its session.
  const adminKeepAlive = (async () => {
    while (Date.now() < stopAt) {
      if (admin.ended) await adminSignIn()
      else if (adminTab) admin.send(adminTab, { type: 'activity', at: Date.now() })
      await sleep(2000)
    }
  })()
  const actor = async () => {
    const every = (ACTORS * 1000) / RATE
    while (Date.now() < stopAt) {
      const began = Date.now()
      // Endings come in waves (a logout-all ends up to four sessions): new logins keep the load level.
      const [, name, run] = live().length < LIVE_SESSIONS ? ([0, 'login', login] as const) : choose()
      try {
        await run()
      } catch (err) {
        note(problems.unexpected, `${name}: ${String(err).slice(0, 300)}`)
      }
      ops++
      await sleep(Math.max(0, every - (Date.now() - began)))
    }
  }
  await Promise.all([...Array.from({ length: ACTORS }, actor), sampler, adminKeepAlive])
  const final = await measure(app, child, collector, start, live().length, tabCount())
  if (process.env.SOAK_SAMPLES) writeFileSync(process.env.SOAK_SAMPLES, JSON.stringify(samples.map(({ kinds, ...s }) => ({ ...s, kinds: Object.fromEntries(kinds) }))))
  t.comment(`churn over after ${final.at.toFixed(0)} s: ${ops} operations; rss ${mib(final.rss)}, redis ${mib(final.redisBytes)}, keys ${final.keys}`)
  const firstJudged = samples.find((s) => s.at >= Math.max(SOAK_SECONDS * 0.2, RETENTION_FILLED_SECONDS)) ?? samples[0]!
  t.comment(
    `Redis by kind of key, at ${firstJudged.at.toFixed(0)} s → at the end (keys, bytes):\n${[...final.kinds.entries()]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, 25)
      .map(([kind, k]) => {
        const then = firstJudged.kinds.get(kind) ?? { n: 0, bytes: 0 }
        return `  ${kind}: ${then.n} → ${k.n}, ${then.bytes} → ${k.bytes}`
      })
      .join('\n')}`,
  )
  t.comment(
    [...counts.entries()]
      .sort()
      .map(([k, v]) => `${k}: ${v}`)
      .join(', '),
  )

  t.same(problems.serverErrors, [], 'no 5xx answer')
  t.same(problems.protocol, [], 'no protocol error, no gap or duplicate, no unexpected close')
  t.same(problems.unexpected, [], 'no unexpected answer')
  // Each sign-out against PostgreSQL: the session ended (with a reason the close code names) before the client heard of it.
  // Sessions keep expiring after the churn: judged are the sign-outs seen before the query.
  const seenSignOuts = signOuts.slice()
  const ids = [...new Set(seenSignOuts.map((o) => o.sessionId))]
  const endings = ids.length
    ? await app.ctx.database.sql`select id, status, end_reason, extract(epoch from ended_at) * 1000 as ended_ms from sessions where id = any(${ids}::uuid[])`
    : []
  const endingOf = new Map(endings.map((r) => [r.id as string, r]))
  const spurious = seenSignOuts.flatMap((o) => {
    const e = endingOf.get(o.sessionId)
    if (!e || e.status === 'active' || !e.end_reason) return [`${o.sessionId}: ${o.what} while PostgreSQL has it ${e?.status ?? 'missing'}`]
    if (Number(e.ended_ms) > o.at + 1000) return [`${o.sessionId}: ${o.what} ${Math.round(Number(e.ended_ms) - o.at)} ms before it ended (${e.end_reason})`]
    if (o.code && !CLOSE_REASONS[o.code]!(e.end_reason as string)) return [`${o.sessionId}: ${o.what}, but it ended for ${e.end_reason}`]
    return []
  })
  // What PostgreSQL knows of a session it has no row for: its login record and audit trail.
  for (const id of ids.filter((id) => !endingOf.has(id)).slice(0, 5)) {
    const logins = await app.ctx.database.sql`select success, reason, extract(epoch from at) * 1000 as at_ms from login_attempts where session_id = ${id}`
    const audit = await app.ctx.database.sql`select type, extract(epoch from at) * 1000 as at_ms from audit_events where session_id = ${id} order by id`
    const seen = seenSignOuts.filter((o) => o.sessionId === id).map((o) => `${o.what} at ${((o.at - start) / 1000).toFixed(1)} s`)
    t.comment(`${id}: no row; logins ${JSON.stringify(logins)}; audit ${JSON.stringify(audit)}; the client saw ${seen.join(', ')}`)
  }
  t.same(spurious.slice(0, 20), [], `every one of the ${seenSignOuts.length} sign-outs the clients saw (401s, refused tabs, terminal closes) matches the session's end in PostgreSQL: no spurious sign-out`)
  t.ok(seenSignOuts.length > 0 || SOAK_SECONDS < 60, 'the churn did sign sessions out')
  t.ok((counts.get('logout 204') ?? 0) > 0 && (counts.get('switch 200') ?? 0) > 0 && (counts.get('resumed') ?? 0) > 0, 'the churn did log out, switch and resume')
  t.ok((counts.get('close 4002') ?? 0) + (counts.get('tab refused 401') ?? 0) > 0 || SOAK_SECONDS < 60, 'some sessions expired while their tabs were open')

  const warmup = Math.max(SOAK_SECONDS * 0.2, RETENTION_FILLED_SECONDS)
  const window = Math.max(SOAK_SECONDS * 0.2, 30)
  const early = samples.filter((s) => s.at >= warmup && s.at < warmup + window)
  const late = samples.filter((s) => s.at >= SOAK_SECONDS - window)
  for (const [what, of] of [
    ['RSS of the process', (s: Sample) => s.rss],
    ['Redis memory of the prefix', (s: Sample) => s.redisBytes],
    ['Redis keys of the prefix', (s: Sample) => s.keys],
  ] as const) {
    const a = median(early.map(of))
    const b = median(late.map(of))
    const growth = (b / a - 1) * 100
    const line = `${what}: median ${a.toFixed(0)} over ${warmup.toFixed(0)}–${(warmup + window).toFixed(0)} s, ${b.toFixed(0)} over the last ${window.toFixed(0)} s: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %`
    if (SOAK_SECONDS < MIN_JUDGED_SECONDS || what !== 'RSS of the process') t.comment(line)
    else t.ok(growth < 5, line)
  }
  // The key count follows the sessions with traces and the open tabs too; judged is the trend they do not explain.
  const keyPoints = samples.filter((s) => s.at >= warmup).map((s) => ({ t: s.at, loads: [s.traced, s.tabs], y: s.keys }))
  const keyTrend = keyPoints.length >= 3 ? growthBeyondLoad(keyPoints) : Number.NaN
  const keyLine = `Redis keys of the prefix beyond what the sessions with traces and the open tabs explain: ${keyTrend >= 0 ? '+' : ''}${keyTrend.toFixed(1)} % from ${warmup.toFixed(0)} s to the end (${keyPoints.length} samples)`
  if (SOAK_SECONDS < MIN_JUDGED_SECONDS) t.comment(keyLine)
  else t.ok(keyTrend < 5, keyLine)
  // Redis memory follows the sessions it holds traces of and the open tabs, which swing; judged is the trend they do not explain.
  const judged = samples.filter((s) => s.at >= warmup).map((s) => ({ t: s.at, loads: [s.traced, s.tabs], y: s.redisBytes }))
  const trend = judged.length >= 3 ? growthBeyondLoad(judged) : Number.NaN
  const trendLine = `Redis memory of the prefix beyond what the sessions with traces and the open tabs explain: ${trend >= 0 ? '+' : ''}${trend.toFixed(1)} % from ${warmup.toFixed(0)} s to the end (${judged.length} samples)`
  if (SOAK_SECONDS < MIN_JUDGED_SECONDS) t.comment(trendLine)
  else t.ok(trend < 5, trendLine)
  // Flat memory means nothing if the load faded: as many sessions and tabs live at the end as after the warm-up.
  if (SOAK_SECONDS >= MIN_JUDGED_SECONDS) {
    for (const [what, of] of [
      ['live sessions', (s: Sample) => s.liveSessions],
      ['open tabs', (s: Sample) => s.tabs],
    ] as const) {
      const a = median(early.map(of))
      const b = median(late.map(of))
      t.ok(a >= 5 && b >= a * 0.5, `the churn held steady: median ${a} ${what} after the warm-up, ${b} at the end`)
    }
  }

  t.test('after the churn, every session ends and every key has a TTL or an owner', async (t) => {
    for (const b of browsers()) {
      b.closeTabs()
      if (!b.ended) await b.request('logout', 'POST', '/api/auth/logout', undefined, [204])
    }
    await admin.request('logout', 'POST', '/api/auth/logout', undefined, [204])
    adminTab = null
    const sql = app.ctx.database.sql
    // Abandoned sessions end by the idle sweep; then every ending's follow-up runs.
    await until('every session ended', async () => (await sql`select count(*)::int as n from sessions where status = 'active'`)[0]!.n === 0, 120_000)
    await until('every ending finalized', async () => (await sql`select count(*)::int as n from sessions where finalized_at is null`)[0]!.n === 0, 120_000)
    await sleep(3000) // a flush and a sweep or two after the last ending
    const [{ n: total }] = (await sql`select count(*)::int as n from sessions`) as unknown as [{ n: number }]
    t.comment(`${total} sessions in all`)
    t.same(problems.serverErrors, [], 'still no 5xx')

    const keys = await keysOf(redis, prefix)
    const pipeline = redis.pipeline()
    for (const key of keys) pipeline.pttl(key).type(key)
    const replies = ((await pipeline.exec()) ?? []).map(([, v]) => v)
    const queues = app.ctx.queues.all
    const byKind = new Map<string, { n: number; maxTtl: number; noTtl: number }>()
    const ownerless: string[] = []
    const tooLong: string[] = []
    for (const [i, key] of keys.entries()) {
      const ttl = Number(replies[2 * i])
      const type = String(replies[2 * i + 1])
      if (ttl === -2) continue // expired between the scan and now
      const kind = kindOf(key, prefix)
      const k = byKind.get(kind) ?? { n: 0, maxTtl: 0, noTtl: 0 }
      k.n++
      if (ttl === -1) k.noTtl++
      else k.maxTtl = Math.max(k.maxTtl, ttl)
      byKind.set(kind, k)
      if (kind.startsWith('{bull}:')) {
        // BullMQ's own structures are permanent; a job (a hash with a timestamp) must be in one of its queue's states.
        if (type === 'hash' && (await redis.hexists(key, 'timestamp'))) {
          const [, queueName, jobId] = /^\{bull\}:([\w-]+):(.+)$/.exec(key.slice(prefix.length))!
          const queue = Object.values(queues).find((q) => q.name === queueName)
          const state = queue ? await queue.getJobState(jobId!) : 'no queue'
          if (state === 'unknown' || state === 'no queue') ownerless.push(`${key} (job, ${state})`)
        }
        continue
      }
      if (ttl === -1) ownerless.push(`${key} (${type})`)
      // What an ended session leaves behind goes with its event log (its API budget with its window).
      else if (/^\{s:<uuid>\}:(?!budget)|^tok:|^lockrel:/.test(kind) && ttl > (EVENT_LOG_TTL_SECONDS + 5) * 1000) tooLong.push(`${key}: ${Math.round(ttl / 1000)} s`)
    }
    t.comment(
      `keys left: ${keys.length}\n${[...byKind.entries()]
        .sort()
        .map(([kind, k]) => `  ${kind}: ${k.n}${k.noTtl ? `, ${k.noTtl} without TTL` : ''}${k.maxTtl ? `, TTL up to ${Math.round(k.maxTtl / 1000)} s` : ''}`)
        .join('\n')}`,
    )
    t.same(ownerless.slice(0, 20), [], 'no key without a TTL or an owner (the deadline lists and the dirty set are empty once no session is live)')
    t.same(tooLong.slice(0, 20), [], `nothing of an ended session outlives its event log (${EVENT_LOG_TTL_SECONDS} s)`)
  })
})
