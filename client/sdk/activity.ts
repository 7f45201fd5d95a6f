// Real input in this tab (pointer, key, wheel, scroll, touch, the tab shown again),
// reported at most once per 5 s by all tabs of the browser together. Input inside the
// window is reported when it closes (trailing edge), not at the next heartbeat; input while
// the session is idle (`urgent`) is reported at once, so the user is back the moment they move.

export const ACTIVITY_THROTTLE_MS = 5000
const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'scroll', 'touchstart'] as const

type Timer = ReturnType<typeof setTimeout>

export interface TrackerClock {
  now(): number
  later(fn: () => void, ms: number): Timer
  cancel(timer: Timer | undefined): void
}

const realClock: TrackerClock = { now: Date.now, later: (fn, ms) => setTimeout(fn, ms), cancel: (timer) => clearTimeout(timer) }

export class InputTracker {
  /** This tab's latest input (ms epoch); 0 while it has had none. */
  lastInputAt = 0
  /** The latest activity report of any tab of this browser. */
  private lastReportedAt = 0
  private trailing: Timer | undefined
  private readonly onInput = () => this.input(this.clock.now(), this.urgent())
  private readonly onVisibility = () => {
    if (this.doc?.visibilityState === 'visible') this.onInput()
  }

  constructor(
    private readonly report: (at: number) => void,
    private readonly target?: EventTarget,
    private readonly doc?: EventTarget & { visibilityState?: string },
    private readonly clock: TrackerClock = realClock,
    private readonly urgent: () => boolean = () => false,
  ) {}

  start(): void {
    for (const type of INPUT_EVENTS) this.target?.addEventListener(type, this.onInput, { capture: true, passive: true })
    this.doc?.addEventListener('visibilitychange', this.onVisibility)
  }

  stop(): void {
    for (const type of INPUT_EVENTS) this.target?.removeEventListener(type, this.onInput, { capture: true })
    this.doc?.removeEventListener('visibilitychange', this.onVisibility)
    this.clock.cancel(this.trailing)
    this.trailing = undefined
  }

  /** Input at `at`: reported now, or when the throttle window closes; `force` reports at once. */
  input(at: number, force = false): void {
    this.lastInputAt = Math.max(this.lastInputAt, at)
    const wait = this.lastReportedAt + ACTIVITY_THROTTLE_MS - at
    if (force || wait <= 0) {
      this.reportNow()
      return
    }
    this.trailing ??= this.clock.later(() => {
      this.trailing = undefined
      if (this.lastInputAt > this.lastReportedAt) this.reportNow()
    }, wait)
  }

  /** Another tab reported input at `at`: this one's input until then is told. */
  reportedElsewhere(at: number): void {
    this.lastReportedAt = Math.max(this.lastReportedAt, at)
  }

  private reportNow(): void {
    this.clock.cancel(this.trailing)
    this.trailing = undefined
    this.lastReportedAt = this.lastInputAt
    this.report(this.lastInputAt)
  }
}
