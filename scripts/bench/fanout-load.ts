// Load generator of the fan-out benchmark (a child process; see load-process.ts). It holds
// two tabs per session, fires platform switches from tab A through HTTP at a fixed rate and
// times each one until the `platform.switched` frame reaches tab B; and it times resumes.
// The same code drives Tessera and the baseline: only the addresses differ.
import { Pool } from 'undici'
import WebSocket from 'ws'
import { ORIGIN, progress, serveLoad, USER_AGENT } from './load-process.js'
import { summarize } from './stats.js'
import { closeSockets, type Dialect, type Frame, type Hello, type Opened, openTab as openWelcomedTab, pool } from './tabs.js'

export interface LoadSession {
  id: string
  cookie: string
  csrf: string
  platforms: number[]
}

interface Pending {
  target: number
  sentAt: number
  /** When the schedule wanted it sent: the latency from here is corrected for coordinated omission. */
  dueAt: number
  answered: boolean
  delivered: boolean
}

interface ClientSession extends LoadSession {
  tabIds: [string, string]
  current: number
  pending: Pending | null
}

const name = 'fanout load'
let sessions: ClientSession[] = []
const sockets = new Set<WebSocket>()
let unexpectedCloses = 0
let measuring: ((s: ClientSession, frame: Frame, at: number) => void) | null = null
/** The protocol of the server under test, set by `connect`. */
let dialect: Dialect = 'tessera'

/** Opens a tab and counts it among the open sockets: a close this side did not ask for is unexpected. */
async function openTab(address: string, cookie: string, hello: Hello, onFrame: (f: Frame, at: number) => void): Promise<Opened> {
  const opened = await openWelcomedTab(address, cookie, hello, onFrame, { dialect })
  sockets.add(opened.ws)
  opened.ws.once('close', () => {
    if (sockets.delete(opened.ws)) unexpectedCloses++
  })
  return opened
}

async function connect(args: { label: string; addresses: string[]; sessions: LoadSession[]; concurrency: number; dialect?: Dialect }) {
  dialect = args.dialect ?? 'tessera'
  sessions = args.sessions.map((s, i) => ({ ...s, tabIds: [`bench-${i}-a`, `bench-${i}-b`], current: 0, pending: null }))
  unexpectedCloses = 0
  const tabs = sessions.flatMap((s) => [0, 1].map((t) => ({ s, t })))
  const handshakes: number[] = []
  const failures = new Map<string, number>()
  const started = performance.now()
  let lastReport = started
  await pool(tabs, args.concurrency, async ({ s, t }) => {
    // Tab B is on the last node: the second one in the cross-node variant.
    const address = t === 0 ? args.addresses[0]! : args.addresses.at(-1)!
    const onFrame = t === 1 ? (f: Frame, at: number) => measuring?.(s, f, at) : () => {}
    try {
      const { handshakeMs } = await openTab(address, s.cookie, { type: 'hello', tabId: s.tabIds[t], view: '/feed' }, onFrame)
      handshakes.push(handshakeMs)
    } catch (err) {
      const key = (err as Error).message
      failures.set(key, (failures.get(key) ?? 0) + 1)
    }
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now()
      const rate = handshakes.length / ((lastReport - started) / 1000)
      progress(name, `${args.label}: ${handshakes.length}/${tabs.length} sockets open (${rate.toFixed(0)}/s)`)
    }
  })
  const seconds = (performance.now() - started) / 1000
  progress(name, `${args.label}: ${handshakes.length} sockets open in ${seconds.toFixed(1)} s, ${[...failures.values()].reduce((a, b) => a + b, 0)} failed`)
  return { open: handshakes.length, failures: Object.fromEntries(failures), seconds, connectsPerSecond: handshakes.length / seconds, handshake: summarize(handshakes) }
}

async function switches(args: { label: string; address: string; rate: number; seconds: number; timeoutMs: number }) {
  const http = new Pool(`http://${args.address}`, { connections: 64, pipelining: 1, keepAliveTimeout: 60_000 })
  const latencies: number[] = []
  const fromSchedule: number[] = []
  const answers: number[] = []
  const errors = new Map<string, number>()
  const lag: number[] = []
  const error = (key: string) => errors.set(key, (errors.get(key) ?? 0) + 1)
  const closesBefore = unexpectedCloses
  // Switches the schedule asked for while every session already had one in flight: the
  // service is not keeping up; they are not sent, and reported.
  let skipped = 0

  const settle = (s: ClientSession, p: Pending) => {
    if (s.pending === p && p.answered && p.delivered) s.pending = null
  }
  measuring = (s, frame, at) => {
    const p = s.pending
    if (frame.type !== 'platform.switched' || !p || p.delivered || frame.platform?.id !== p.target) return
    p.delivered = true
    latencies.push(at - p.sentAt)
    fromSchedule.push(at - p.dueAt)
    settle(s, p)
  }

  const fire = (dueAt: number) => {
    // A random session with no switch in flight: one at a time per session keeps each
    // frame unambiguous (and a session's switches take turns on its row lock anyway).
    let s: ClientSession | undefined
    for (let tries = 0; tries < 20 && !s; tries++) {
      const c = sessions[Math.floor(Math.random() * sessions.length)]!
      if (!c.pending) s = c
    }
    if (!s) {
      skipped++
      return
    }
    const session = s
    const target = session.platforms[1 - session.current]!
    const p: Pending = { target, sentAt: performance.now(), dueAt, answered: false, delivered: false }
    session.pending = p
    http
      .request({
        method: 'POST',
        path: `/api/switch_platform/${target}`,
        headers: {
          cookie: session.cookie,
          'x-csrf-token': session.csrf,
          'x-tab-id': session.tabIds[0],
          origin: ORIGIN,
          'user-agent': USER_AGENT,
          'content-type': 'application/json',
        },
        body: '{}',
      })
      .then(async ({ statusCode, body }) => {
        await body.text()
        if (statusCode !== 200) {
          error(`HTTP ${statusCode}`)
          if (session.pending === p) session.pending = null
          return
        }
        answers.push(performance.now() - p.sentAt)
        session.current = 1 - session.current
        p.answered = true
        settle(session, p)
      })
      .catch((err: Error & { code?: string }) => {
        error(err.code ?? err.message)
        if (session.pending === p) session.pending = null
      })
  }

  const total = Math.round(args.rate * args.seconds)
  const started = performance.now()
  let scheduled = 0
  let lastReport = started
  let lastCount = 0
  // Open loop: the schedule, not the answers, decides when the next switch leaves.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now()
      const due = Math.min(total, Math.floor(((now - started) / 1000) * args.rate))
      while (scheduled < due) {
        lag.push(performance.now() - (started + (scheduled * 1000) / args.rate))
        fire(started + (scheduled * 1000) / args.rate)
        scheduled++
      }
      if (now - lastReport >= 1000) {
        const recent = latencies.slice(lastCount)
        lastCount = latencies.length
        lastReport = now
        const s = summarize(recent)
        progress(name, `${args.label}: ${scheduled - skipped}/${total} switches sent, last second p50 ${s.p50.toFixed(2)} ms p99 ${s.p99.toFixed(2)} ms, errors ${[...errors.values()].reduce((a, b) => a + b, 0)}`)
      }
      if (scheduled >= total) {
        clearInterval(timer)
        resolve()
      }
    }, 2)
  })
  // Let the last ones arrive; whatever has not by the deadline is counted as lost.
  const deadline = performance.now() + args.timeoutMs
  while (sessions.some((s) => s.pending) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  for (const s of sessions) {
    if (!s.pending) continue
    error(s.pending.answered ? `no frame within ${args.timeoutMs} ms` : `no answer within ${args.timeoutMs} ms`)
    s.pending = null
  }
  measuring = null
  await http.close()
  const seconds = (performance.now() - started) / 1000
  const sent = scheduled - skipped
  return {
    sent,
    seconds,
    achievedRate: sent / seconds,
    latency: summarize(latencies),
    latencyFromSchedule: summarize(fromSchedule),
    answer: summarize(answers),
    errors: Object.fromEntries(errors),
    errorCount: [...errors.values()].reduce((a, b) => a + b, 0),
    skipped,
    socketsClosed: unexpectedCloses - closesBefore,
    scheduleLag: summarize(lag),
  }
}

// ── resume ───────────────────────────────────────────────────────────────────────

let resumeTab: { ws: WebSocket; lastSeq: number } | null = null
let resumeSpec: { address: string; cookie: string; tabId: string } | null = null

async function resumeOpen(args: { address: string; cookie: string; tabId: string }) {
  resumeSpec = args
  const tab = { ws: null as unknown as WebSocket, lastSeq: 0 }
  const opened = await openTab(args.address, args.cookie, { type: 'hello', tabId: args.tabId, view: '/feed' }, (f) => {
    if (typeof f.seq === 'number') tab.lastSeq = Math.max(tab.lastSeq, f.seq)
  })
  tab.ws = opened.ws
  resumeTab = tab
  return { seq: tab.lastSeq }
}

/** Closes the resume tab cleanly; answers the last seq it saw. */
async function resumeClose() {
  const tab = resumeTab
  if (!tab) throw new Error('no resume tab')
  sockets.delete(tab.ws)
  await new Promise<void>((resolve) => {
    tab.ws.once('close', () => resolve())
    tab.ws.close(1000)
  })
  return { lastSeq: tab.lastSeq }
}

/** Reconnects with `lastSeq`; times `hello` → the `expect`-th replayed frame and checks the order. */
async function resumeReconnect(args: { lastSeq: number; expect: number; timeoutMs: number }) {
  if (!resumeSpec) throw new Error('no resume tab')
  const tab = { ws: null as unknown as WebSocket, lastSeq: args.lastSeq }
  let helloAt = 0
  let replayed = 0
  let inOrder = true
  let resumed: boolean | undefined
  let done: (ms: number) => void = () => {}
  const finished = new Promise<number>((resolve) => {
    done = resolve
  })
  const hello = { type: 'hello', tabId: resumeSpec.tabId, view: '/feed', lastSeq: args.lastSeq }
  const ws = new WebSocket(`ws://${resumeSpec.address}/ws`, { headers: { cookie: resumeSpec.cookie, origin: ORIGIN, 'user-agent': USER_AGENT }, perMessageDeflate: false })
  ws.on('message', (data) => {
    const at = performance.now()
    const f = JSON.parse(data.toString()) as Frame & { resumed?: boolean }
    if (f.type === 'welcome') {
      resumed = f.resumed
      return
    }
    if (typeof f.seq !== 'number') return
    if (f.seq !== tab.lastSeq + 1) inOrder = false
    tab.lastSeq = Math.max(tab.lastSeq, f.seq)
    if (++replayed === args.expect) done(at - helloAt)
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)))
  })
  helloAt = performance.now()
  ws.send(JSON.stringify(hello))
  const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(Number.NaN), args.timeoutMs).unref())
  const ms = await Promise.race([finished, timeout])
  tab.ws = ws
  sockets.add(ws)
  resumeTab = tab
  return { ms, replayed, inOrder, resumed: resumed ?? null }
}

async function closeAll() {
  const all = [...sockets]
  sockets.clear()
  await closeSockets(all)
  sessions = []
  resumeTab = null
  return { closed: all.length }
}

serveLoad({ connect, switches, resumeOpen, resumeClose, resumeReconnect, closeAll })
