// The SDK's pure parts: backoff schedule, event order, version guard, single-flight, input throttle.
import t from 'tap'
import { InputTracker } from '../../client/sdk/activity.js'
import { BACKOFF, backoffDelay } from '../../client/sdk/backoff.js'
import { endingOfClose, endingOfRefusal } from '../../client/sdk/endings.js'
import { SessionError } from '../../client/sdk/errors.js'
import { applyEvent, verdict } from '../../client/sdk/events.js'
import { singleFlight } from '../../client/sdk/switching.js'
import type { LoggedMessage, Platform, SessionState } from '../../src/realtime/protocol.js'
import { MemoryLocks } from '../helpers/browser-apis.js'

const at = '2026-12-06T00:00:00.000Z'
const platform = (id: number): Platform => ({ id, name: `P${id}`, type: 'mastodon', instanceUrl: 'https://p.example', isDefault: false })
const state = (version: number, platformId = 1): SessionState => ({
  user: { id: 1, username: 'ada', email: null, role: 'user' },
  platform: platform(platformId),
  session: { id: 's', createdAt: at, lastActivity: at, expiresAt: at, idleExpiresAt: at, status: 'active', tabs: 1 },
  version,
  seq: 0,
  timestamp: at,
})
const switched = (seq: number, version: number, platformId: number): LoggedMessage => ({
  type: 'platform.switched',
  platform: platform(platformId),
  previousPlatform: null,
  version,
  byTabId: null,
  seq,
  at,
})

t.test('backoff: full jitter below 0.5 s doubling to a 30 s cap', async (t) => {
  const ceilings = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, () => 0.999999) + 1)
  t.same(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000])
  t.equal(backoffDelay(0, () => 0), 0, 'the lowest draw reconnects at once')
  t.equal(backoffDelay(50, () => 0.5), BACKOFF.capMs / 2, 'a huge attempt count stays at the cap')
  for (let attempt = 0; attempt < 12; attempt++) {
    const delay = backoffDelay(attempt)
    t.ok(delay >= 0 && delay < Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** attempt), `attempt ${attempt}: ${delay} ms within its window`)
  }
})

t.test('events: the next seq applies, an old one is a duplicate, a skipped one asks for a resume', async (t) => {
  t.equal(verdict(switched(5, 2, 2), 4), 'apply')
  t.equal(verdict(switched(4, 2, 2), 4), 'duplicate')
  t.equal(verdict(switched(1, 2, 2), 4), 'duplicate')
  t.equal(verdict(switched(7, 2, 2), 4), 'resume', 'seq 5 and 6 are missing')
})

t.test('events: terminal events and resyncs apply whatever their seq (a seq can restart)', async (t) => {
  t.equal(verdict({ type: 'session.terminated', reason: 'admin', message: 'x', seq: 1, at }, 40), 'apply')
  t.equal(verdict({ type: 'session.expired', reason: 'idle_timeout', seq: 99, at }, 40), 'apply')
  t.equal(verdict({ type: 'session.logged_out', byTabId: null, seq: 3, at }, 40), 'apply')
  t.equal(verdict({ type: 'session.state', state: state(1), resync: true, seq: 2, at }, 40), 'apply')
  t.equal(verdict({ type: 'session.state', state: state(1), seq: 2, at }, 40), 'duplicate', 'an ordinary session.state keeps its order')
})

t.test('events: a switch older than the state held never steps it back', async (t) => {
  const now = state(5, 3)
  t.equal(applyEvent(now, switched(9, 4, 2)).platform?.id, 3, 'version 4 < 5: ignored')
  t.equal(applyEvent(now, switched(9, 5, 2)).platform?.id, 3, 'the same version: ignored')
  const next = applyEvent(now, switched(9, 6, 2))
  t.equal(next.platform?.id, 2)
  t.equal(next.version, 6)
  t.equal(next.seq, 9)
  const idle = applyEvent(now, { type: 'session.idle', lastActivity: '2026-12-06T01:00:00.000Z', seq: 10, at })
  t.equal(idle.session.status, 'idle')
  t.equal(idle.session.lastActivity, '2026-12-06T01:00:00.000Z')
  const resynced = applyEvent(now, { type: 'session.state', state: state(2, 7), resync: true, seq: 1, at })
  t.equal(resynced.platform?.id, 7, 'a resync replaces the state, even with a lower version')
  t.equal(resynced.seq, 1)
})

t.test('single-flight: while one run is pending, every other call rejects at once with SWITCH_IN_PROGRESS', async (t) => {
  for (const locks of [new MemoryLocks(), undefined]) {
    const held = new Set<string>()
    let release!: () => void
    let runs = 0
    const first = singleFlight(locks, held, 'switch', async () => {
      runs++
      await new Promise<void>((r) => (release = r))
      return 'first'
    })
    await new Promise((r) => setImmediate(r))
    // A second tab of the same browser shares the lock manager, not the `held` set.
    await t.rejects(singleFlight(locks, locks ? new Set() : held, 'switch', async () => runs++), { code: 'SWITCH_IN_PROGRESS' })
    await t.rejects(singleFlight(locks, held, 'switch', async () => runs++), { code: 'SWITCH_IN_PROGRESS' })
    release()
    t.equal(await first, 'first')
    t.equal(runs, 1, `${locks ? 'Web Locks' : 'in-tab fallback'}: only the first ran`)
    t.equal(await singleFlight(locks, held, 'switch', async () => 'next'), 'next', 'free again once settled')
    await t.rejects(singleFlight(locks, held, 'switch', async () => Promise.reject(new Error('boom'))), /boom/)
    t.equal(await singleFlight(locks, held, 'switch', async () => 'after failure'), 'after failure', 'a failed run frees it too')
  }
})

t.test('input: reported at most once per 5 s across tabs, the last of a burst when the window closes; no input, no report', async (t) => {
  let now = 1_000_000
  const pending = new Map<number, { at: number; fn: () => void }>()
  let nextId = 0
  const clock = {
    now: () => now,
    later: (fn: () => void, ms: number) => {
      pending.set(++nextId, { at: now + ms, fn })
      return nextId as unknown as ReturnType<typeof setTimeout>
    },
    cancel: (id: ReturnType<typeof setTimeout> | undefined) => void pending.delete(id as unknown as number),
  }
  /** Moves the clock on, firing the timers that come due. */
  const advance = (ms: number) => {
    now += ms
    for (const [id, timer] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at > now) continue
      pending.delete(id)
      timer.fn()
    }
  }
  const reports: number[] = []
  const target = new EventTarget()
  const tracker = new InputTracker((at) => reports.push(at), target, undefined, clock)
  tracker.start()
  advance(60_000)
  t.same(reports, [], 'a tab nobody touches never reports')
  target.dispatchEvent(new Event('keydown'))
  t.same(reports, [1_060_000], 'the first input is reported at once')
  advance(1000)
  target.dispatchEvent(new Event('pointermove'))
  advance(2000)
  target.dispatchEvent(new Event('wheel'))
  t.same(reports, [1_060_000], 'input within 5 s of the report waits')
  t.equal(tracker.lastInputAt, 1_063_000, 'but it is remembered for the heartbeat')
  advance(1999)
  t.same(reports, [1_060_000], 'until the window closes')
  advance(1)
  t.same(reports, [1_060_000, 1_063_000], 'then the latest input of the burst is reported, once')
  advance(60_000)
  t.equal(reports.length, 2, 'nothing more without input')

  target.dispatchEvent(new Event('scroll'))
  t.equal(reports.length, 3)
  advance(1000)
  target.dispatchEvent(new Event('pointerdown'))
  tracker.reportedElsewhere(now + 500)
  advance(5000)
  t.equal(reports.length, 3, 'another tab reported after this input: this one stays quiet')
  advance(10_000)
  tracker.input(now, true)
  t.equal(reports.length, 4, '"stay" reports at once')
  target.dispatchEvent(new Event('keydown'))
  tracker.stop()
  advance(60_000)
  target.dispatchEvent(new Event('keydown'))
  t.equal(reports.length, 4, 'stopped: no listener and no pending report left')
})

t.test('input while the session is idle is reported at once, whatever the window', async (t) => {
  let now = 5_000_000
  let idle = false
  const reports: number[] = []
  const target = new EventTarget()
  const clock = { now: () => now, later: () => 0 as unknown as ReturnType<typeof setTimeout>, cancel: () => {} }
  const tracker = new InputTracker((at) => reports.push(at), target, undefined, clock, () => idle)
  tracker.start()
  target.dispatchEvent(new Event('keydown'))
  now += 1000
  target.dispatchEvent(new Event('keydown'))
  t.same(reports, [5_000_000], 'active: the second input waits for the window')
  idle = true
  now += 1000
  target.dispatchEvent(new Event('pointermove'))
  t.same(reports, [5_000_000, 5_002_000], 'idle: reported at once, so the session is active again now')
  tracker.stop()
})

t.test('endings: a refusal names why the session ended; a final close code when the server cannot say', async (t) => {
  const refusal = (code: string, reason?: string) => new SessionError(code as 'SESSION_EXPIRED', 'refused', 401, reason ? { reason } : {})
  t.same(endingOfRefusal(refusal('SESSION_EXPIRED', 'lifetime'), true), { kind: 'expired', reason: 'lifetime' })
  t.same(endingOfRefusal(refusal('SESSION_EXPIRED', 'idle_timeout'), false), { kind: 'expired', reason: 'idle_timeout' }, 'shown on a page that was not live too')
  t.same(endingOfRefusal(refusal('SESSION_TERMINATED', 'admin'), true), { kind: 'terminated', reason: 'admin', message: 'Session terminated by administrator' })
  t.same(endingOfRefusal(refusal('SESSION_TERMINATED', 'revoked_by_user'), true), { kind: 'terminated', reason: 'revoked_by_user', message: 'Signed out from another device' })
  t.same(endingOfRefusal(refusal('SESSION_TERMINATED', 'logout'), true), { kind: 'loggedOut', byTabId: null })
  t.same(endingOfRefusal(refusal('UNAUTHENTICATED'), true), { kind: 'loggedOut', byTabId: null }, 'a live page whose cookie stopped working')
  t.equal(endingOfRefusal(refusal('UNAUTHENTICATED'), false), 'signedOut', 'a page that nobody is signed in to')
  t.equal(endingOfRefusal(new SessionError('VERSION_CONFLICT', 'x', 409), true), null, 'not a refusal of the session')
  t.equal(endingOfRefusal(new SessionError('NETWORK_ERROR', 'x'), true), null)
  t.same(endingOfClose(4002), { kind: 'expired', reason: 'idle_timeout' })
  t.same(endingOfClose(4001), { kind: 'terminated', reason: 'admin', message: 'Session terminated by administrator' })
  t.same(endingOfClose(4003), { kind: 'loggedOut', byTabId: null })
})
