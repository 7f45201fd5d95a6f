// The server's pings: every tab once per ping interval, spread over the interval in slots
// (10,000 pings at once stalled fan-out for half a second), closing tabs that stopped
// answering and refreshing the presence of the rest in batches.
import type { FastifyBaseLogger } from 'fastify'
import type { Presence } from '../presence/service.js'
import { CLOSE } from './protocol.js'
import type { Tab } from './tab.js'

export interface PingerDeps {
  presence: Pick<Presence, 'seeTabs'>
  pingIntervalMs: number
  log: Pick<FastifyBaseLogger, 'debug'>
}

/** How often a slice of the tabs is pinged: every tab once per ping interval, on its own tick. */
const PING_TICK_MS = 100

/** At most this many ticks per interval (a long interval gets longer ticks, not more slots). */
const MAX_PING_SLOTS = 600

/** Presence refreshes per Redis pipeline: a slice at 50,000 tabs stays a few hundred commands. */
const PRESENCE_BATCH = 500

type Seen = Parameters<Presence['seeTabs']>[0]

export class Pinger {
  private readonly timer: NodeJS.Timeout
  private readonly pingMs: number
  /** The tabs by the tick of the ping interval they are pinged on (round robin as they come). */
  private readonly slots: Set<Tab>[]
  private readonly tickMs: number
  /** Monotonic: a wall clock set back must not stop the ticks. */
  private readonly epoch = performance.now()
  private pingedTicks = 0
  private nextSlot = 0

  constructor(private readonly d: PingerDeps) {
    this.pingMs = d.pingIntervalMs
    this.slots = Array.from({ length: Math.min(MAX_PING_SLOTS, Math.max(1, Math.round(this.pingMs / PING_TICK_MS))) }, () => new Set<Tab>())
    this.tickMs = this.pingMs / this.slots.length
    this.timer = setInterval(() => this.tick(), this.tickMs).unref()
  }

  add(tab: Tab): void {
    tab.pingSlot = this.nextSlot++ % this.slots.length
    this.slots[tab.pingSlot]!.add(tab)
  }

  remove(tab: Tab): void {
    this.slots[tab.pingSlot]?.delete(tab)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /**
   * One tick of the ping interval: the tabs of the slots now due are checked and pinged, and
   * their presence refreshed. A late timer catches up, so every tab is still seen once an interval.
   */
  private tick() {
    const now = Date.now()
    const due = Math.floor((performance.now() - this.epoch) / this.tickMs)
    const slots = this.slots.length
    let alive: Seen = []
    for (let tick = Math.max(this.pingedTicks, due - slots + 1); tick <= due; tick++) {
      // A tab closed here leaves its slot at once; a Set lets go of it mid-iteration safely.
      for (const tab of this.slots[tick % slots]!) {
        if (now - tab.lastSeen > 2 * this.pingMs || (tab.state === 'awaiting-hello' && now - tab.connectedAt > 2 * this.pingMs)) {
          tab.close(CLOSE.heartbeatTimeout, tab.state === 'awaiting-hello' ? 'no hello' : 'no answer to ping')
          continue
        }
        if (!tab.isOpen()) continue
        tab.socket.ping()
        if (!tab.inPresence) continue
        alive.push({ sessionId: tab.sessionId, socket: tab, keepUntil: tab.auth.session.expiresAt })
        if (alive.length < PRESENCE_BATCH) continue
        this.seePresence(alive)
        alive = []
      }
    }
    this.pingedTicks = due + 1
    this.seePresence(alive)
  }

  /** Keeps this node's tabs counted; tabs of a node that died fade out after 1.5 intervals. */
  private seePresence(alive: Seen) {
    this.d.presence.seeTabs(alive).catch((err) => this.d.log.debug({ err }, 'realtime: presence refresh failed'))
  }
}
