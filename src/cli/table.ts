// Plain-text output for people: aligned columns and "3m ago".

/** Control characters (a tab's view is user input) would move the cursor or recolour the terminal. */
const CONTROL = /\p{Cc}/gu

export function cell(value: string | number | null | undefined, max = 40): string {
  if (value === null || value === undefined || value === '') return '-'
  const text = String(value).replace(CONTROL, '?')
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** Columns separated by two spaces; `right` names the columns aligned right (numbers). */
export function table(headers: string[], rows: string[][], right: ReadonlySet<number> = new Set()): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

export function relativeTime(iso: string, now = Date.now()): string {
  const seconds = Math.floor((now - new Date(iso).getTime()) / 1000)
  if (seconds < 5) return 'just now'
  if (seconds < 60) return `${seconds}s ago`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ago`
  const hours = Math.floor(minutes / 60)
  if (hours < 24) return `${hours}h ${minutes % 60}m ago`
  return `${Math.floor(hours / 24)}d ${hours % 24}h ago`
}
