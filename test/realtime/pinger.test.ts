// The pinger's clock, driven by the test: when a silent tab is closed, measured in the
// pinger's own time rather than the machine's (which is shared and noisy).
import t from 'tap'
import { Pinger, silenceLimit } from '../../src/realtime/pinger.js'
import { CLOSE } from '../../src/realtime/protocol.js'

const PING_MS = 1000 // ten slots of 100 ms
const FEED_MS = 250
/** Two intervals, less a tick late, a tick of slack and the feed's window: 1,550 ms. */
const SILENCE_MS = 2 * PING_MS - 2 * 100 - FEED_MS

/** A tab as the pinger sees it; `answers` makes it answer every ping at once. */
function fakeTab(clock: { wall: number }, name: string, o: { answers: boolean; state?: 'awaiting-hello' | 'live' }) {
  const tab = {
    name,
    tabId: name,
    socketId: `socket-${name}`,
    sessionId: 'session',
    auth: { session: { expiresAt: Number.MAX_SAFE_INTEGER } },
    state: o.state ?? 'live',
    connectedAt: clock.wall,
    lastSeen: clock.wall,
    inPresence: true,
    pingSlot: 0,
    pings: 0,
    closed: null as { code: number; at: number } | null,
    isOpen: () => tab.closed === null,
    close(code: number) {
      tab.closed ??= { code, at: clock.wall }
    },
    socket: {
      ping() {
        tab.pings++
        if (o.answers) tab.lastSeen = clock.wall
      },
    },
  }
  return tab
}

type FakeTab = ReturnType<typeof fakeTab>

/** A pinger on a clock the test moves, in steps of one tick, removing tabs as the hub does when they close. */
function pingerOnAClock() {
  const clock = { wall: 1_000_000, monotonic: 0 }
  const pinger = new Pinger({
    pingIntervalMs: PING_MS,
    feedIntervalMs: FEED_MS,
    presence: { seeTabs: async () => {} },
    log: { debug: () => {} },
    clock: { now: () => clock.wall, monotonic: () => clock.monotonic },
    timer: false,
  })
  const tabs: FakeTab[] = []
  const add = (tab: FakeTab) => {
    const close = tab.close
    tab.close = (code: number) => {
      close(code)
      pinger.remove(tab as never)
    }
    tabs.push(tab)
    pinger.add(tab as never)
    return tab
  }
  const run = (ms: number) => {
    for (let i = 0; i < ms / 100; i++) {
      clock.wall += 100
      clock.monotonic += 100
      pinger.tick()
    }
  }
  return { clock, add, run }
}

t.test('the silence limit leaves room for the admin feed within two intervals, and never goes under one and a half', async (t) => {
  t.equal(silenceLimit(10_000, 100, 250), 19_550, 'the defaults: admin screens show a vanished tab within 20 s of its last sign of life')
  t.equal(silenceLimit(PING_MS, 100, FEED_MS), SILENCE_MS)
  t.equal(silenceLimit(1000, 100, 60_000), 1500, 'a long feed window does not close tabs sooner than 1.5 intervals')
})

t.test('a silent tab is closed 4408 at the silence limit after it was last heard from, not at its next slot', async (t) => {
  const { clock, add, run } = pingerOnAClock()
  // Ten tabs fill the ten slots, so the silent ones below sit at different phases of the interval.
  const answering = Array.from({ length: 10 }, (_, i) => add(fakeTab(clock, `answering-${i}`, { answers: true })))
  run(350)
  const silent = Array.from({ length: 10 }, (_, i) => {
    run(100)
    return add(fakeTab(clock, `silent-${i}`, { answers: false }))
  })
  run(4000)
  for (const tab of silent) {
    t.equal(tab.closed?.code, CLOSE.heartbeatTimeout, `${tab.name} is closed 4408`)
    const silence = tab.closed!.at - tab.lastSeen
    t.ok(silence >= SILENCE_MS && silence <= SILENCE_MS + 100, `${tab.name}: closed ${silence} ms after it was last heard from, within a tick of the limit`)
    t.ok(tab.pings >= 1 && tab.pings <= 2, `${tab.name} was pinged on its slot meanwhile, once an interval`)
  }
  t.same(
    answering.filter((tab) => tab.closed !== null).map((tab) => tab.name),
    [],
    'no tab that answers is closed',
  )
})

t.test('a tab that answers again in time is not closed, and one that never says hello is closed at the silence limit after it connected', async (t) => {
  const { clock, add, run } = pingerOnAClock()
  const late = add(fakeTab(clock, 'late', { answers: false }))
  const mute = add(fakeTab(clock, 'mute', { answers: true, state: 'awaiting-hello' }))
  run(1500) // pinged once, unanswered: on the watch list
  late.lastSeen = clock.wall // it says something
  run(1500)
  t.equal(late.closed, null, 'heard from 1.5 intervals in: kept')
  t.equal(mute.closed?.code, CLOSE.heartbeatTimeout, 'no hello: closed 4408 although it answers pings')
  t.ok(mute.closed!.at - mute.connectedAt <= SILENCE_MS + 100, 'at the silence limit after it connected')
  run(2000)
  t.equal(late.closed?.code, CLOSE.heartbeatTimeout, 'silent again: closed')
  t.ok(late.closed!.at - late.lastSeen <= SILENCE_MS + 100, 'at the silence limit after it was last heard from')
})
