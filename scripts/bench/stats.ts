// Percentiles of latency samples and the plain-text tables the benchmarks print.

export interface Summary {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** Nearest-rank percentiles (no interpolation: every figure is a latency that happened). */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples).sort()
  const n = sorted.length
  if (n === 0) return { count: 0, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, p999: Number.NaN, max: Number.NaN, mean: Number.NaN }
  const at = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!
  let sum = 0
  for (const v of sorted) sum += v
  return { count: n, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: sorted[n - 1]!, mean: sum / n }
}

/** Milliseconds with as many decimals as make sense for their size. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return 'n/a'
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)
}

export function num(v: number, decimals = 0): string {
  return Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: decimals, minimumFractionDigits: decimals }) : 'n/a'
}

/** `tessera / baseline` as `1.23×`. */
export function ratio(tessera: number, baseline: number): string {
  return Number.isFinite(tessera) && Number.isFinite(baseline) && baseline > 0 ? `${(tessera / baseline).toFixed(2)}×` : 'n/a'
}

export function percent(part: number, whole: number): string {
  return Number.isFinite(part) && Number.isFinite(whole) && whole > 0 ? `${((100 * part) / whole).toFixed(0)} %` : 'n/a'
}

export type Row = string[]

/** One line of `npm run bench`'s summary: a figure of Tessera's beside its target, the baseline's and the peer's ('—': none). */
export interface SummaryRow {
  figure: string
  target: string
  baseline: string
  peer: string
  tessera: string
  /** Tessera's figure over the baseline's (and the peer's, where there is one). */
  ratio: string
  verdict: string
}

/** An aligned plain-text table for the terminal. */
export function textTable(header: Row, rows: Row[]): string {
  // Markdown emphasis (a verdict's **not met**) is for the document, not the terminal.
  const plain = rows.map((r) => r.map((c) => c.replaceAll('**', '')))
  const widths = header.map((h, i) => Math.max(h.length, ...plain.map((r) => (r[i] ?? '').length)))
  const line = (r: Row) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...plain.map(line)].join('\n')
}

/** The same table in Markdown, for docs/benchmarks.md. */
export function markdownTable(header: Row, rows: Row[]): string {
  const esc = (c: string) => c.replaceAll('|', '\\|')
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}
