// Real input in this tab (pointer, key, wheel, scroll, touch, the tab shown again),
// reported at most once per 5 s by all tabs of the browser together.

export const ACTIVITY_THROTTLE_MS = 5000
const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'scroll', 'touchstart'] as const

export class InputTracker {
  /** This tab's latest input (ms epoch); 0 while it has had none. */
  lastInputAt = 0
  /** The latest activity report of any tab of this browser. */
  private lastReportedAt = 0
  private readonly onInput = () => this.input(this.now())
  private readonly onVisibility = () => {
    if (this.doc?.visibilityState === 'visible') this.onInput()
  }

  constructor(
    private readonly report: (at: number) => void,
    private readonly target?: EventTarget,
    private readonly doc?: EventTarget & { visibilityState?: string },
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    for (const type of INPUT_EVENTS) this.target?.addEventListener(type, this.onInput, { capture: true, passive: true })
    this.doc?.addEventListener('visibilitychange', this.onVisibility)
  }

  stop(): void {
    for (const type of INPUT_EVENTS) this.target?.removeEventListener(type, this.onInput, { capture: true })
    this.doc?.removeEventListener('visibilitychange', this.onVisibility)
  }

  /** Input at `at`: reported unless some tab reported within the throttle window. */
  input(at: number, force = false): void {
    this.lastInputAt = Math.max(this.lastInputAt, at)
    if (!force && at - this.lastReportedAt < ACTIVITY_THROTTLE_MS) return
    this.lastReportedAt = at
    this.report(at)
  }

  /** Another tab reported input at `at`. */
  reportedElsewhere(at: number): void {
    this.lastReportedAt = Math.max(this.lastReportedAt, at)
  }
}
