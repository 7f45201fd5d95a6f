// Analytics over a range, in the viewer's time zone: durations, peaks, activity by hour of
// day and why sessions ended (GET /admin/sessions/analytics).
import { useEffect, useMemo, useState } from 'react'
import { useSession } from 'tessera/react'
import { BarChart } from '../BarChart.js'

interface Analytics {
  from: string
  to: string
  bucket: 'hour' | 'day'
  tz: string
  totalSessions: number
  averageDurationSeconds: number | null
  medianDurationSeconds: number | null
  peakConcurrent: { bucketStart: string; peak: number }[]
  overallPeak: { at: string; sessions: number } | null
  activeByHourOfDay: number[]
  endReasons: Record<string, number>
}

const RANGES = [
  { id: '24h', label: 'Last 24 hours', hours: 24, bucket: 'hour' },
  { id: '7d', label: 'Last 7 days', hours: 7 * 24, bucket: 'day' },
  { id: '30d', label: 'Last 30 days', hours: 30 * 24, bucket: 'day' },
] as const

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone

export function duration(seconds: number | null): string {
  if (seconds === null) return '—'
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

export function AnalyticsPage() {
  const { client } = useSession()
  const [range, setRange] = useState<(typeof RANGES)[number]['id']>('7d')
  const [data, setData] = useState<Analytics | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    const chosen = RANGES.find((r) => r.id === range)!
    const to = new Date()
    const from = new Date(to.getTime() - chosen.hours * 3_600_000)
    const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), bucket: chosen.bucket, tz: zone })
    let cancelled = false
    client.request<Analytics>('GET', `/admin/sessions/analytics?${query}`).then(
      (d) => !cancelled && setData(d),
      (err: Error) => !cancelled && setError(err.message),
    )
    return () => {
      cancelled = true
    }
  }, [client, range])

  const peaks = useMemo(() => {
    if (!data) return { labels: [], values: [] }
    const format = new Intl.DateTimeFormat(undefined, data.bucket === 'hour' ? { hour: '2-digit', minute: '2-digit', timeZone: data.tz } : { month: 'short', day: 'numeric', timeZone: data.tz })
    return { labels: data.peakConcurrent.map((p) => format.format(new Date(p.bucketStart))), values: data.peakConcurrent.map((p) => p.peak) }
  }, [data])
  const hours = useMemo(() => ({ labels: Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, '0')}:00`), values: data?.activeByHourOfDay ?? [] }), [data])
  const reasons = useMemo(() => {
    const entries = Object.entries(data?.endReasons ?? {}).sort((a, b) => b[1] - a[1])
    return { labels: entries.map(([r]) => r.replaceAll('_', ' ')), values: entries.map(([, n]) => n) }
  }, [data])

  return (
    <section className="page" aria-labelledby="analytics-title">
      <div className="page-head">
        <h1 id="analytics-title" className="page-title">
          Analytics
        </h1>
        <fieldset className="row plain">
          <legend className="sr-only">Range</legend>
          {RANGES.map((r) => (
            <button key={r.id} type="button" className={`button button-small ${range === r.id ? 'button-primary' : 'button-secondary'}`} aria-pressed={range === r.id} onClick={() => setRange(r.id)}>
              {r.label}
            </button>
          ))}
        </fieldset>
      </div>
      <p className="muted small">Times in {zone}.</p>
      {error && (
        <p className="notice notice-danger" role="alert">
          {error}
        </p>
      )}
      {data && (
        <>
          <div className="tiles">
            <div className="card tile">
              <span className="muted small">Sessions</span>
              <strong data-testid="total-sessions" data-value={data.totalSessions}>
                {data.totalSessions.toLocaleString()}
              </strong>
            </div>
            <div className="card tile">
              <span className="muted small">Average duration</span>
              <strong data-testid="average-duration" data-value={data.averageDurationSeconds ?? ''}>
                {duration(data.averageDurationSeconds)}
              </strong>
            </div>
            <div className="card tile">
              <span className="muted small">Median duration</span>
              <strong data-testid="median-duration" data-value={data.medianDurationSeconds ?? ''}>
                {duration(data.medianDurationSeconds)}
              </strong>
            </div>
            <div className="card tile">
              <span className="muted small">Peak at once</span>
              <strong data-testid="overall-peak" data-value={data.overallPeak?.sessions ?? 0}>
                {data.overallPeak?.sessions ?? 0}
              </strong>
              {data.overallPeak && <span className="muted small">{new Date(data.overallPeak.at).toLocaleString(undefined, { timeZone: data.tz })}</span>}
            </div>
          </div>
          <div className="charts">
            <div className="card" data-testid="chart-peaks">
              <BarChart title={`Peak concurrent sessions per ${data.bucket}`} labels={peaks.labels} values={peaks.values} unit="sessions" />
            </div>
            <div className="card" data-testid="chart-hours">
              <BarChart title="Active sessions by hour of day" labels={hours.labels} values={hours.values} unit="sessions" />
            </div>
            <div className="card" data-testid="chart-reasons">
              <BarChart title="Why sessions ended" labels={reasons.labels} values={reasons.values} unit="sessions" horizontal />
            </div>
          </div>
        </>
      )}
    </section>
  )
}
