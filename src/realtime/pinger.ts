// The server's pings: every tab once per ping interval, spread over the interval in slots
// (10,000 pings at once stalled fan-out for half a second), closing tabs that stopped
// answering and refreshing the presence of the rest in batches.
//
// A tab is closed once it has been silent for two intervals, less the time its close takes to
// reach admin screens (silenceLimit, docs/realtime.md), not at the first slot tick after
// that: its slot comes round once an interval, which let a vanished tab stay up to three
// intervals. A tab whose deadline falls before its next slot tick goes
// on a watch list that every tick looks through; it is short, as only silent tabs are on it.
import type { FastifyBaseLogger } from 'fastify'
import type { Presence, SeenTab } from '../presence/service.js'
import { CLOSE } from './protocol.js'
import type { Tab } from './tab.js'

export interface PingerDeps {
  presence: Pick<Presence, 'seeTabs'>
  pingIntervalMs: number
  /** The admin feed's coalescing window (ADMIN_FEED_INTERVAL_MS): a close reaches admin screens up to this much later. */
  feedIntervalMs: number
  log: Pick<FastifyBaseLogger, 'debug'>
  /** The clocks, wall (the tabs' lastSeen) and monotonic (the ticks); tests drive their own. */
  clock?: { now(): number; monotonic(): number }
  /** false: no timer; whoever made the pinger calls tick() (tests). */
  timer?: boolean
}

/** What the pinger reads and does to a tab. */
type PingedTab = Pick<Tab, 'lastSeen' | 'connectedAt' | 'state' | 'pingSlot' | 'inPresence' | 'sessionId' | 'socketId' | 'tabId' | 'auth' | 'isOpen' | 'close'> & {
  socket: Pick<Tab['socket'], 'ping'>
}

const systemClock = { now: () => Date.now(), monotonic: () => performance.now() }

/** How often a slice of the tabs is pinged: every tab once per ping interval, on its own tick. */
const PING_TICK_MS = 100

/** At most this many ticks per interval (a long interval gets longer ticks, not more slots). */
const MAX_PING_SLOTS = 600

/**
 * How long a tab may be silent: two ping intervals, less what its close takes to reach the
 * admin feed (up to a tick late, a tick of slack for a late timer, then the feed's window),
 * so that admin screens show it gone within two intervals of its last sign of life (P12's
 * 20 s by default, where a tab is closed after 19.55 s of silence). Never under one and a
 * half intervals.
 */
export function silenceLimit(pingMs: number, tickMs: number, feedIntervalMs: number): number {
  return 2 * pingMs - Math.min(2 * tickMs + feedIntervalMs, pingMs / 2)
}

export class Pinger {
  private readonly timer: NodeJS.Timeout | null
  private readonly pingMs: number
  /** The tabs by the tick of the ping interval they are pinged on (round robin as they come). */
  private readonly slots: Set<PingedTab>[]
  /** Tabs whose deadline comes before their next slot tick: looked at on every tick. */
  private readonly watched = new Set<PingedTab>()
  private readonly tickMs: number
  /** How long a tab may be silent before it is closed (silenceLimit). */
  private readonly silenceMs: number
  private readonly clock: NonNullable<PingerDeps['clock']>
  /** Monotonic: a wall clock set back must not stop the ticks. */
  private readonly epoch: number
  private pingedTicks = 0
  private nextSlot = 0

  constructor(private readonly d: PingerDeps) {
    this.pingMs = d.pingIntervalMs
    this.clock = d.clock ?? systemClock
    this.epoch = this.clock.monotonic()
    this.slots = Array.from({ length: Math.min(MAX_PING_SLOTS, Math.max(1, Math.round(this.pingMs / PING_TICK_MS))) }, () => new Set<PingedTab>())
    this.tickMs = this.pingMs / this.slots.length
    this.silenceMs = silenceLimit(this.pingMs, this.tickMs, d.feedIntervalMs)
    this.timer = d.timer === false ? null : setInterval(() => this.tick(), this.tickMs).unref()
  }

  add(tab: PingedTab): void {
    tab.pingSlot = this.nextSlot++ % this.slots.length
    this.slots[tab.pingSlot]!.add(tab)
  }

  remove(tab: PingedTab): void {
    this.slots[tab.pingSlot]?.delete(tab)
    this.watched.delete(tab)
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }

  /**
   * When the tab is closed for silence: the silence limit after it was last heard from; one
   * that never said hello, the silence limit after it connected, whatever it answered.
   */
  private deadlineOf(tab: PingedTab): number {
    return (tab.state === 'awaiting-hello' ? tab.connectedAt : tab.lastSeen) + this.silenceMs
  }

  private closeSilent(tab: PingedTab) {
    this.watched.delete(tab)
    tab.close(CLOSE.heartbeatTimeout, tab.state === 'awaiting-hello' ? 'no hello' : 'no answer to ping')
  }

  /**
   * One tick of the ping interval: the watched tabs past their deadline are closed, and the
   * tabs of the slots now due are checked and pinged, and their presence refreshed. A late
   * timer catches up, so every tab is still seen once an interval.
   */
  tick(): void {
    const now = this.clock.now()
    for (const tab of this.watched) {
      const deadline = this.deadlineOf(tab)
      if (now >= deadline) this.closeSilent(tab)
      else if (deadline > now + this.pingMs) this.watched.delete(tab) // heard from again
    }
    const due = Math.floor((this.clock.monotonic() - this.epoch) / this.tickMs)
    const slots = this.slots.length
    const alive: SeenTab[] = []
    for (let tick = Math.max(this.pingedTicks, due - slots + 1); tick <= due; tick++) {
      // A tab closed here leaves its slot at once; a Set lets go of it mid-iteration safely.
      for (const tab of this.slots[tick % slots]!) {
        const deadline = this.deadlineOf(tab)
        if (now >= deadline) {
          this.closeSilent(tab)
          continue
        }
        if (deadline <= now + this.pingMs) this.watched.add(tab)
        if (!tab.isOpen()) continue
        tab.socket.ping()
        if (!tab.inPresence) continue
        alive.push({ sessionId: tab.sessionId, socket: tab, keepUntil: tab.auth.session.expiresAt })
      }
    }
    this.pingedTicks = due + 1
    this.seePresence(alive)
  }

  /** Keeps this node's tabs counted; tabs of a node that died fade out after 1.5 intervals. */
  private seePresence(alive: SeenTab[]) {
    if (alive.length === 0) return
    this.d.presence.seeTabs(alive).catch((err) => this.d.log.debug({ err }, 'realtime: presence refresh failed'))
  }
}
