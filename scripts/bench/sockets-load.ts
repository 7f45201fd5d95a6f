// Load generator of the sockets benchmarks (a child process; see load-process.ts): it holds
// two tabs per session, churns short-lived tabs (P10), times force terminations until
// every tab of the session has its `session.terminated` frame and is closed (P2), and
// watches the admin feed's tab counts (P12). The same
// code drives Tessera and the baseline: only the address and the admin's credentials differ.
import { Pool } from 'undici'
import type WebSocket from 'ws'
import { ORIGIN, progress, serveLoad, USER_AGENT } from './load-process.js'
import { summarize } from './stats.js'
import { closeSockets, type Dialect, type Frame, loopbackSource, openTab, pool } from './tabs.js'

export interface SocketsSession {
  id: string
  cookie: string
}

interface HeldTab {
  ws: WebSocket
  terminatedAt: number | null
  closedAt: number | null
  closeCode: number | null
}

interface Held extends SocketsSession {
  tabs: HeldTab[]
  /** Resolves when every tab has had `session.terminated` and is closed. */
  ended: () => boolean
  onEnd: (() => void) | null
}

const name = 'sockets load'
let held: Held[] = []

const count = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1)

async function open(args: { label: string; address: string; sessions: SocketsSession[]; concurrency: number; dialect?: Dialect }) {
  held = args.sessions.map((s) => {
    const h: Held = { ...s, tabs: [], onEnd: null, ended: () => h.tabs.length > 0 && h.tabs.every((t) => t.terminatedAt !== null && t.closedAt !== null) }
    return h
  })
  const handshakes: number[] = []
  const failures = new Map<string, number>()
  const started = performance.now()
  let lastReport = started
  const jobs = held.flatMap((h) => [0, 1].map((t) => ({ h, t })))
  let attempts = 0
  await pool(jobs, args.concurrency, async ({ h, t }) => {
    const tab: HeldTab = { ws: null as unknown as WebSocket, terminatedAt: null, closedAt: null, closeCode: null }
    try {
      const hello = { type: 'hello', tabId: `held-${h.id}-${t}`, view: '/feed' }
      const opened = await openTab(args.address, h.cookie, hello, (f: Frame, at) => {
        if (f.type === 'session.terminated') tab.terminatedAt ??= at
      }, { dialect: args.dialect, localAddress: loopbackSource(attempts++) })
      tab.ws = opened.ws
      opened.ws.once('close', (code) => {
        tab.closedAt = performance.now()
        tab.closeCode = code
        if (h.ended()) h.onEnd?.()
      })
      h.tabs.push(tab)
      handshakes.push(opened.handshakeMs)
    } catch (err) {
      count(failures, (err as Error).message)
    }
    if (performance.now() - lastReport > 2000) {
      lastReport = performance.now()
      progress(name, `${args.label}: ${handshakes.length}/${jobs.length} sockets open`)
    }
  })
  const seconds = (performance.now() - started) / 1000
  return { open: handshakes.length, failures: Object.fromEntries(failures), seconds, connectsPerSecond: handshakes.length / seconds, handshake: summarize(handshakes) }
}

/** P10: new tabs one after another on `concurrency` lanes for `seconds`: upgrade, hello, welcome, close. */
async function churn(args: { label: string; address: string; sessions: SocketsSession[]; seconds: number; concurrency: number }) {
  const handshakes: number[] = []
  const failures = new Map<string, number>()
  const closing: Promise<void>[] = []
  const started = performance.now()
  const until = started + args.seconds * 1000
  let n = 0
  let lastReport = started
  await Promise.all(
    Array.from({ length: args.concurrency }, async () => {
      while (performance.now() < until) {
        const s = args.sessions[n % args.sessions.length]!
        const tabId = `churn-${n++}`
        try {
          const opened = await openTab(args.address, s.cookie, { type: 'hello', tabId, view: '/churn' }, () => {})
          handshakes.push(opened.handshakeMs)
          closing.push(closeSockets([opened.ws]))
        } catch (err) {
          count(failures, (err as Error).message)
        }
        if (performance.now() - lastReport > 2000) {
          lastReport = performance.now()
          progress(name, `${args.label}: ${handshakes.length} connects (${(handshakes.length / ((lastReport - started) / 1000)).toFixed(0)}/s)`)
        }
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  await Promise.all(closing)
  return { connects: handshakes.length, seconds, connectsPerSecond: handshakes.length / seconds, handshake: summarize(handshakes), failures: Object.fromEntries(failures) }
}

/**
 * P2: DELETE /admin/sessions/:id at `rate` per second over the first `count` held sessions,
 * each timed from just before its request leaves until its last tab is closed after its
 * `session.terminated` frame. A session that does not get there within `timeoutMs` is lost.
 */
async function terminate(args: { label: string; address: string; admin: { cookie: string; csrf: string }; rate: number; count: number; timeoutMs: number }) {
  const http = new Pool(`http://${args.address}`, { connections: 32, pipelining: 1 })
  const targets = held.filter((h) => h.tabs.length === 2).slice(0, args.count)
  const latencies: number[] = []
  const errors = new Map<string, number>()
  const codes = new Map<string, number>()
  const started = performance.now()
  const one = (h: Held) =>
    new Promise<void>((resolve) => {
      const sentAt = performance.now()
      const timer = setTimeout(() => {
        count(errors, `not every tab closed within ${args.timeoutMs} ms`)
        resolve()
      }, args.timeoutMs)
      h.onEnd = () => {
        clearTimeout(timer)
        latencies.push(Math.max(...h.tabs.map((t) => t.closedAt!)) - sentAt)
        for (const t of h.tabs) count(codes, String(t.closeCode))
        resolve()
      }
      http
        .request({
          method: 'DELETE',
          path: `/admin/sessions/${h.id}`,
          headers: { cookie: args.admin.cookie, 'x-csrf-token': args.admin.csrf, origin: ORIGIN, 'user-agent': USER_AGENT, 'content-type': 'application/json' },
          body: JSON.stringify({ reason: 'benchmark' }),
        })
        .then(async ({ statusCode, body }) => {
          await body.text()
          if (statusCode !== 200) count(errors, `HTTP ${statusCode}`)
        })
        .catch((err: Error & { code?: string }) => count(errors, err.code ?? err.message))
    })
  const pending: Promise<void>[] = []
  for (let i = 0; i < targets.length; i++) {
    // Open loop: each request leaves at its time on the schedule, answered or not.
    const due = started + (i * 1000) / args.rate
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    pending.push(one(targets[i]!))
  }
  await Promise.all(pending)
  await http.close()
  const seconds = (performance.now() - started) / 1000
  return { sent: targets.length, achievedRate: targets.length / seconds, latency: summarize(latencies), errors: Object.fromEntries(errors), closeCodes: Object.fromEntries(codes) }
}

// ── the admin feed, watched (P12) ─────────────────────────────────────────────

/** Tab counts of the sessions in the admin feed, and when each last changed (epoch ms). */
const feed = new Map<string, { tabs: number; at: number }>()
let watcher: WebSocket | null = null
const epochNow = () => performance.timeOrigin + performance.now()

type FeedView = { id: string; tabs: number; currentView: string | null }
type FeedFrame = Frame & { sessions?: FeedView[]; upserted?: FeedView[]; removed?: { id: string }[] }

/** Admin feed messages received, and views sent by `viewChanges` not yet seen in the feed (`sessionId view` → when sent). */
let feedMessages = 0
const viewsSent = new Map<string, number>()
const viewLatencies: number[] = []

/** Opens an admin tab that subscribes to the live feed under `filter` and keeps `feed` current. */
async function watch(args: { address: string; admin: { cookie: string }; filter: object }) {
  const opened = await openTab(args.address, args.admin.cookie, { type: 'hello', tabId: 'bench-watcher', view: '/admin' }, (f: FeedFrame) => {
    const at = epochNow()
    feedMessages++
    for (const v of [...(f.sessions ?? []), ...(f.upserted ?? [])]) {
      if (feed.get(v.id)?.tabs !== v.tabs) feed.set(v.id, { tabs: v.tabs, at })
      const key = `${v.id} ${v.currentView}`
      const sentAt = viewsSent.get(key)
      if (sentAt !== undefined) {
        viewsSent.delete(key)
        viewLatencies.push(at - sentAt)
      }
    }
    for (const v of f.removed ?? []) feed.set(v.id, { tabs: -1, at })
  })
  watcher = opened.ws
  opened.ws.send(JSON.stringify({ type: 'admin.subscribe', filter: args.filter }))
  return null
}

/** Waits until the feed shows `tabs` tabs for every session of `ids`; answers when each got there (epoch ms), null for those that did not in time. */
async function feedShows(args: { ids: string[]; tabs: number; timeoutMs: number }) {
  const deadline = performance.now() + args.timeoutMs
  const done = () => args.ids.every((id) => feed.get(id)?.tabs === args.tabs)
  while (!done() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  return args.ids.map((id) => (feed.get(id)?.tabs === args.tabs ? feed.get(id)!.at : null))
}

// ── traffic from held tabs (P3, P6) ───────────────────────────────────────────

/** Runs `send(i)` for i = 0, 1, … at `perSecond` for `seconds`, on a schedule (open loop); answers how many were sent. */
async function schedule(perSecond: number, seconds: number, send: (i: number) => void): Promise<{ sent: number; seconds: number }> {
  const total = Math.round(perSecond * seconds)
  const started = performance.now()
  let sent = 0
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * perSecond))
      while (sent < due) send(sent++)
      if (sent >= total) {
        clearInterval(timer)
        resolve()
      }
    }, 5)
  })
  return { sent, seconds: (performance.now() - started) / 1000 }
}

const openTabs = () => held.flatMap((h) => h.tabs.filter((t) => t.closedAt === null).map((t) => t.ws))

/** P3: every held tab sends a heartbeat `perTabPerSecond` times a second, spread evenly. */
async function heartbeats(args: { perTabPerSecond: number; seconds: number }) {
  const tabs = openTabs()
  const frame = JSON.stringify({ type: 'heartbeat', view: '/feed' })
  const closedBefore = held.flatMap((h) => h.tabs).filter((t) => t.closedAt !== null).length
  const r = await schedule(tabs.length * args.perTabPerSecond, args.seconds, (i) => {
    const ws = tabs[i % tabs.length]!
    if (ws.readyState === ws.OPEN) ws.send(frame)
  })
  const closed = held.flatMap((h) => h.tabs).filter((t) => t.closedAt !== null).length - closedBefore
  return { ...r, perSecond: r.sent / r.seconds, socketsClosed: closed }
}

/** P6: view changes at `perSecond` from the first tab of held sessions in turn, each a view never seen, timed until the admin feed shows it. */
async function viewChanges(args: { perSecond: number; seconds: number; timeoutMs: number }) {
  viewLatencies.length = 0
  viewsSent.clear()
  const sessions = held.filter((h) => h.tabs.length > 0)
  const messagesBefore = feedMessages
  const r = await schedule(args.perSecond, args.seconds, (i) => {
    const h = sessions[i % sessions.length]!
    const view = `/bench/${i}`
    viewsSent.set(`${h.id} ${view}`, epochNow())
    h.tabs[0]!.ws.send(JSON.stringify({ type: 'heartbeat', view }))
  })
  const messages = feedMessages - messagesBefore
  const deadline = performance.now() + args.timeoutMs
  while (viewsSent.size > 0 && performance.now() < deadline) await new Promise((res) => setTimeout(res, 20))
  // A view replaced by the session's next one before a delta went out is never shown, rightly.
  return { ...r, latency: summarize(viewLatencies), unseen: viewsSent.size, feedMessagesPerSecond: messages / r.seconds }
}

async function closeAll() {
  const all = held.flatMap((h) => h.tabs.map((t) => t.ws))
  held = []
  if (watcher) all.push(watcher)
  watcher = null
  feed.clear()
  await closeSockets(all)
  return { closed: all.length }
}

serveLoad({ open, churn, terminate, watch, feedShows, heartbeats, viewChanges, closeAll })
