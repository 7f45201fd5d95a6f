// R2 and P12: an API node with 1,000 tabs is killed (SIGKILL). Its tabs reconnect to the
// other node as the client SDK does (exponential backoff with full jitter) and resume from
// the session logs, while events keep being published; every tab ends with exactly the
// events of its session, and presence forgets the dead node's sockets by the stale-tab rule
// alone (nobody tells it: the node is gone).
import t from 'tap'
import { ADMIN_PASSWORD, build, type Client, PASSWORD } from '../helpers/app.js'
import { spawnTessera, type TesseraProcess } from '../helpers/process.js'
import { connect, type Message, type TabClient } from '../helpers/ws.js'
import { sleep, until } from '../helpers/wait.js'

const USERS = 50
const SESSIONS_PER_USER = 5
const TABS_PER_SESSION = 4
/** One tab of every fifth session stays away after the kill, then comes back late. */
const isLate = (session: number, tab: number) => session % 5 === 0 && tab === TABS_PER_SESSION - 1
/** Every request, upgrade and login carries the same browser headers, so the fingerprint holds. */
const BROWSER = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', 'accept-language': 'en-GB' }
const ORIGIN = 'http://localhost:3000'
const ENV = {
  // Two silent intervals close a socket; presence drops a socket after 1.5 intervals.
  WS_PING_INTERVAL_SECONDS: '1',
  SESSION_MAX_CONCURRENT_PER_USER: String(SESSIONS_PER_USER),
  LOGIN_RATE_LIMIT: '100000/min',
  API_RATE_LIMIT: '100000/min',
}

interface TestSession {
  index: number
  client: Client
  platformIds: number[]
  turn: number
  /** A switch of this session is in flight: one at a time, so each is to another platform. */
  busy: boolean
}

/** Runs `fn` over `items`, `width` at a time. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>) {
  let next = 0
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!)
    }),
  )
}

/** One browser tab across its sockets: what it was sent, and the seq it resumes from. */
class ResumingTab {
  readonly sockets: TabClient[] = []
  readonly welcomes: Message[] = []
  /** Every reconnect attempt: where it went and how it ended (null: resumed there). */
  readonly tries: { address: string; error: string | null }[] = []

  constructor(
    readonly session: TestSession,
    readonly tabId: string,
    readonly late: boolean,
  ) {}

  get socket() {
    return this.sockets.at(-1)!
  }

  /** The highest seq this tab has seen: what it asks to resume after. */
  lastSeq(): number {
    let last = Number(this.welcomes[0]?.seq ?? 0)
    for (const s of this.sockets) for (const m of s.logged()) last = Math.max(last, m.seq!)
    return last
  }

  /** Every logged event over all its sockets, in arrival order. */
  seqs(): number[] {
    return this.sockets.flatMap((s) => s.logged().map((m) => m.seq!))
  }

  async open(address: string, lastSeq?: number) {
    const socket = await connect(address, { cookie: `sid=${this.session.client.sid}`, origin: ORIGIN, headers: BROWSER })
    socket.send({ type: 'hello', tabId: this.tabId, view: '/inbox', ...(lastSeq === undefined ? {} : { lastSeq }) })
    this.sockets.push(socket)
    this.welcomes.push(await socket.type('welcome', 30_000))
  }

  /**
   * As the client SDK does after an abnormal close: full jitter over an exponential backoff.
   * The addresses stand for a load balancer that takes a moment to notice a node is gone.
   */
  async reconnect(addresses: string[], baseMs: number) {
    for (let attempt = 0; ; attempt++) {
      await sleep(Math.random() * baseMs * 2 ** Math.min(attempt, 4))
      const address = addresses[attempt % addresses.length]!
      try {
        await this.open(address, this.lastSeq())
        this.tries.push({ address, error: null })
        return
      } catch (err) {
        this.tries.push({ address, error: (err as { code?: string }).code ?? (err as Error).message })
        if (attempt >= 8) throw err
      }
    }
  }
}

/** A platform switch of one session through node B's HTTP API, as its tab A would send it. */
async function switchOn(node: TesseraProcess, s: TestSession): Promise<void> {
  s.turn++
  const res = await fetch(`${node.url}/api/switch_platform/${s.platformIds[s.turn % s.platformIds.length]}`, {
    method: 'POST',
    headers: { ...BROWSER, origin: ORIGIN, cookie: `sid=${s.client.sid}`, 'x-csrf-token': s.client.csrf! },
  })
  if (res.status !== 200) throw new Error(`switch answered ${res.status}: ${await res.text()}`)
}

/** Tabs per session as the admin list shows them (presence, read on a third node). */
async function adminTabs(admin: Client): Promise<Map<string, number>> {
  const res = await admin.get('/admin/sessions?limit=500&role=user')
  if (res.statusCode !== 200) throw new Error(res.body)
  return new Map((res.json().items as { id: string; tabs: number }[]).map((r) => [r.id, r.tabs]))
}

/** Tabs per session as each session's own `GET /api/session_state` on node B shows them. */
async function stateTabs(node: TesseraProcess, sessions: TestSession[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  await inParallel(sessions, 16, async (s) => {
    const res = await fetch(`${node.url}/api/session_state`, { headers: { ...BROWSER, cookie: `sid=${s.client.sid}` } })
    if (res.status !== 200) throw new Error(`session_state answered ${res.status}`)
    out.set(s.client.sessionId!, ((await res.json()) as { session: { tabs: number } }).session.tabs)
  })
  return out
}

/** Tabs per session as an admin feed socket was last told (its snapshot, then every delta in order). */
function feedTabs(feed: TabClient): Map<string, number> {
  const out = new Map<string, number>()
  for (const m of feed.messages) {
    const rows = (m.type === 'admin.snapshot' ? m.sessions : m.type === 'admin.delta' ? m.upserted : []) as { id: string; tabs: number }[]
    for (const r of rows) out.set(r.id, r.tabs)
    if (m.type === 'admin.delta') for (const r of m.removed as { id: string }[]) out.delete(r.id)
  }
  return out
}

/** The sessions whose tab count is not what `want` says, as `id: got≠want`, for a readable failure. */
function countsOff(seen: Map<string, number>, sessions: TestSession[], want: (s: TestSession) => number): string[] {
  return sessions.filter((s) => seen.get(s.client.sessionId!) !== want(s)).map((s) => `${s.index}: ${seen.get(s.client.sessionId!)}≠${want(s)}`)
}

t.test('an API node killed with 1,000 tabs: they resume on the other node with no gap and no duplicate, and presence follows', async (t) => {
  const app = await build(t, ENV, { workers: true })
  const keepUntil = new Date(Date.now() + 3_600_000)
  const [nodeA, nodeB] = await Promise.all([spawnTessera(t, app, { ROLE: 'api', ...ENV }), spawnTessera(t, app, { ROLE: 'api', ...ENV })])
  const addressA = new URL(nodeA.url).host
  const addressB = new URL(nodeB.url).host

  const sessions: TestSession[] = []
  const users = await Promise.all(Array.from({ length: USERS }, (_, u) => app.user(`user${u}`, { platforms: ['P0', 'P1', 'P2'] })))
  const logins = users.flatMap((user, u) => Array.from({ length: SESSIONS_PER_USER }, () => ({ user, name: `user${u}` })))
  await inParallel(logins, 8, async ({ user, name }) => {
    const client = await app.client(BROWSER).signIn(name, PASSWORD)
    sessions.push({ index: sessions.length, client, platformIds: user.platformIds, turn: 0, busy: false })
  })
  const admin = await app.client(BROWSER).signIn('admin', ADMIN_PASSWORD)

  const tabs = sessions.flatMap((s) => Array.from({ length: TABS_PER_SESSION }, (_, i) => new ResumingTab(s, `tab-${s.index}-${i}`, isLate(s.index, i))))
  await inParallel(tabs, 32, (tab) => tab.open(addressA))
  t.equal(tabs.length, 1000, '1,000 tabs on node A')
  t.equal(tabs.filter((tab) => tab.welcomes[0]!.seq === 0).length, 1000, 'every one welcomed before any event of its session')
  await until('the admin list to count 4 tabs for every session', async () => countsOff(await adminTabs(admin), sessions, () => 4).length === 0, 30_000)
  // An admin watching the live feed on the node that survives.
  const feed = await connect(addressB, { cookie: `sid=${admin.sid}`, origin: ORIGIN, headers: BROWSER })
  feed.send({ type: 'hello', tabId: 'admin', view: '/admin' })
  await feed.type('welcome')
  feed.send({ type: 'admin.subscribe', filter: { role: 'user', limit: 500 } })
  await feed.type('admin.snapshot')
  t.same(countsOff(feedTabs(feed), sessions, () => 4), [], 'the admin feed’s snapshot counts 4 tabs for every session')

  // Before the kill: a switch over HTTP and an event on the bus for every session.
  const publishOne = async (s: TestSession, viaHttp: boolean) => {
    if (!viaHttp) return void (await app.ctx.bus.publishSessionEvent(s.client.sessionId!, { type: 'session.active', lastActivity: new Date().toISOString() }, keepUntil))
    if (s.busy) return
    s.busy = true
    try {
      await switchOn(nodeB, s)
    } finally {
      s.busy = false
    }
  }
  await inParallel(sessions, 16, async (s) => {
    await publishOne(s, true)
    await publishOne(s, false)
  })

  // During: events keep coming, round after round over every session, until told to stop.
  let publishing = true
  let rounds = 0
  const publisher = (async () => {
    while (publishing) {
      await inParallel(sessions, 16, (s) => publishOne(s, (s.index + rounds) % 2 === 0))
      rounds++
    }
  })()

  await nodeA.stop('SIGKILL')
  const closes = await Promise.all(tabs.map((tab) => tab.socket.closed))
  t.equal(closes.filter((c) => c.code === 1006).length, 1000, 'every tab lost its socket without a close frame')
  const prompt = tabs.filter((tab) => !tab.late)
  const late = tabs.filter((tab) => tab.late)
  // First to the dead node (refused), then, after a longer backoff, to the live one.
  await Promise.all(prompt.map((tab) => tab.reconnect([addressA, addressB], 500)))
  t.equal(prompt.filter((tab) => tab.sockets.length === 2).length, 950, '950 tabs reconnected to node B')

  // The dead node's sockets are still in presence until they are stale; nothing else removes them.
  const lateSession = (s: TestSession) => (s.index % 5 === 0 ? TABS_PER_SESSION - 1 : TABS_PER_SESSION)
  await until('the admin list to drop the tabs that stayed away', async () => countsOff(await adminTabs(admin), sessions, lateSession).length === 0, 30_000)
  t.same(countsOff(await stateTabs(nodeB, sessions), sessions, lateSession), [], 'session_state counts 3 tabs where one stayed away, 4 elsewhere')
  await until('the admin feed to drop the tabs that stayed away', () => countsOff(feedTabs(feed), sessions, lateSession).length === 0, 30_000)

  await Promise.all(late.map((tab) => tab.reconnect([addressB], 1000)))
  await until('the admin list to count the late tabs again', async () => countsOff(await adminTabs(admin), sessions, () => 4).length === 0, 30_000)
  t.same(countsOff(await stateTabs(nodeB, sessions), sessions, () => 4), [], 'session_state counts 4 tabs again everywhere')
  await until('the admin feed to count the late tabs again', () => countsOff(feedTabs(feed), sessions, () => 4).length === 0, 30_000)

  publishing = false
  await publisher
  t.ok(rounds >= 2, `${rounds} rounds of events over every session while the tabs were away and back`)
  // After: one more switch for every session.
  await inParallel(sessions, 16, (s) => publishOne(s, true))

  const finalSeq = new Map<string, number>()
  for (const s of sessions) finalSeq.set(s.client.sessionId!, await app.ctx.bus.currentSeq(s.client.sessionId!))
  await until(
    'every tab to reach the last seq of its session',
    () => tabs.every((tab) => tab.lastSeq() === finalSeq.get(tab.session.client.sessionId!)),
    30_000,
  )
  const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1)
  const wrong = tabs.filter((tab) => JSON.stringify(tab.seqs()) !== JSON.stringify(oneTo(finalSeq.get(tab.session.client.sessionId!)!)))
  t.same(
    wrong.map((tab) => `${tab.tabId}: ${JSON.stringify(tab.seqs())}`),
    [],
    'every tab has exactly seq 1…N of its session: no gap, no duplicate, in order',
  )
  const seqsBefore = tabs.map((tab) => tab.sockets[0]!.logged().length)
  t.ok(
    seqsBefore.some((n) => n > 0),
    'tabs had events before the kill',
  )
  const resumed = tabs.map((tab) => tab.welcomes[1]!)
  t.equal(resumed.filter((w) => w.resumed === true).length, 1000, 'every reconnect resumed from the log')
  t.equal(tabs.filter((tab) => tab.sockets.some((s) => s.messages.some((m) => m.type === 'session.state'))).length, 0, 'no resync snapshot anywhere')
  t.ok(
    resumed.some((w) => Number(w.replayed) > 0),
    'some tabs had events replayed (they were published while the tab was away)',
  )
  const total = [...finalSeq.values()].reduce((a, b) => a + b, 0)
  t.ok(total > sessions.length * 3, `${total} events over ${sessions.length} sessions`)
  const replayed = resumed.reduce((n, w) => n + Number(w.replayed), 0)
  const attempts = tabs.reduce((n, tab) => n + tab.tries.length, 0)
  const toDead = prompt.flatMap((tab) => tab.tries.filter((a) => a.address === addressA))
  t.ok(toDead.length >= 950, `every prompt tab tried the dead node (${toDead.length} tries)`)
  t.same([...new Set(toDead.map((a) => a.error))], ['ECONNREFUSED'], 'and every try there was refused: node A is really gone')
  t.same(
    prompt.filter((tab) => JSON.stringify(tab.tries.at(-1)) !== JSON.stringify({ address: addressB, error: null }) || tab.tries.filter((a) => a.error === null).length !== 1).map((tab) => tab.tabId),
    [],
    'each prompt tab resumed once, on the live node B',
  )
  t.comment(`${replayed} events replayed on resume; ${attempts} reconnect attempts`)
  for (const tab of tabs) tab.socket.ws.terminate()
  feed.ws.terminate()
})
