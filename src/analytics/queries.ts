// Session analytics over the `sessions` table, computed in SQL (docs/admin.md, "Analytics"):
// CTEs in drizzle's sql template, each statement's row type given to execute().
import { sql } from 'drizzle-orm'
import type { Db } from '../infra/db.js'

/** A handle that runs statements: the database or the snapshot's transaction. */
type Runner = Pick<Db, 'execute'>

export type Bucket = 'hour' | 'day'

export interface AnalyticsRange {
  from: Date
  to: Date
  bucket: Bucket
  /** A zone name PostgreSQL knows (checked by the caller against pg_timezone_names). */
  tz: string
  /** Open sessions count as running until this instant. */
  now: Date
}

export interface SessionAnalytics {
  totalSessions: number
  averageDurationSeconds: number
  medianDurationSeconds: number
  peakConcurrent: { bucketStart: string; peak: number }[]
  overallPeak: { at: string; sessions: number }
  activeByHourOfDay: number[]
  endReasons: Record<string, number>
}

/**
 * The inputs, then a 15-minute UTC grid from two days before `from` to `to`, each point with
 * its local time and the local time 15 minutes earlier. Every zone in use today has a UTC
 * offset that is a multiple of 15 minutes, so every local hour (and day) begins on a grid
 * point: a point starts a new local hour when the truncated hour changes or the clock went
 * back (the repeated hour of an autumn DST change is a bucket of its own), and a new local
 * day when the date changes. The two days before `from` make sure the bucket holding
 * `from` has its start on the grid.
 */
function grid(r: AnalyticsRange) {
  return sql`
    params as (
      select ${r.from}::timestamptz as f, ${r.to}::timestamptz as t, ${r.now}::timestamptz as n, ${r.tz}::text as tz
    ),
    grid as (
      select g, g at time zone p.tz as loc, (g - interval '15 minutes') at time zone p.tz as prev
      from params p,
        generate_series(to_timestamp(floor(extract(epoch from p.f - interval '2 days') / 900)::float8 * 900), p.t, interval '15 minutes') g
    ),
    hour_starts as (
      select g as b, extract(hour from loc)::int as hod from grid
      where date_trunc('hour', loc) <> date_trunc('hour', prev) or loc < prev
    ),
    day_starts as (
      select g as b from grid where date_trunc('day', loc) <> date_trunc('day', prev)
    ),
    -- Each session's interval clipped to [from, to); an open session runs until now.
    live as (
      select greatest(s.created_at, p.f) as s, least(coalesce(s.ended_at, p.n), p.t) as e
      from sessions s, params p
      where s.created_at < p.t and coalesce(s.ended_at, p.n) > p.f
        and greatest(s.created_at, p.f) < least(coalesce(s.ended_at, p.n), p.t)
    )`
}

/**
 * Exact peak concurrency per bucket. Session starts (+1) and ends (−1) and one marker per
 * bucket (0, at the bucket's clipped start) form one stream ordered by time and, at the same
 * instant, ends before the marker before starts: a session that ends exactly when another
 * starts does not overlap it, the marker's running sum is the concurrency carried into the
 * bucket, and starts at the bucket's first instant belong to it. Each row belongs to the
 * latest marker before it; the largest running sum of a bucket's rows is its peak (ends at
 * the bucket's end only lower the sum), and the first row reaching it is when it was reached.
 */
async function peaks(db: Runner, r: AnalyticsRange) {
  const starts = r.bucket === 'hour' ? sql`hour_starts` : sql`day_starts`
  return db.execute<{ bucket_start: Date; peak: number; peak_at: Date }>(sql`
    with ${grid(r)},
    bounds as (
      select b, lead(b) over (order by b) as next from ${starts}
    ),
    buckets as (
      select b as bucket_start, greatest(b, p.f) as cs
      from bounds, params p
      where b < p.t and (next is null or next > p.f)
    ),
    stream as (
      select e as t, -1 as d, 0 as k, null::timestamptz as bs from live
      union all select cs, 0, 1, bucket_start from buckets
      union all select s, 1, 2, null from live
    ),
    levels as (
      select t, sum(d) over w as level, max(bs) over w as bs
      from stream
      window w as (order by t, k rows between unbounded preceding and current row)
    ),
    peaks as (
      select bs, max(level) as peak from levels group by bs
    )
    select p.bs as bucket_start, p.peak::int as peak, min(l.t) as peak_at
    from peaks p join levels l on l.bs = p.bs and l.level = p.peak
    group by p.bs, p.peak order by p.bs`)
}

/**
 * For each local hour of the day, how many sessions were running at some instant of it.
 * The local hours of the range are numbered slots; a session's first slot holds its start
 * and its last slot holds its last instant (one microsecond before its exclusive end), both
 * found by binary search (width_bucket over the sorted slot starts). It counts once for each
 * hour of the day among the slots between, gathered as a 24-bit mask. 50 slots are enough:
 * with at most one clock change among them, 24 consecutive ordinary hours are there.
 */
async function hourOfDay(db: Runner, r: AnalyticsRange) {
  const [row] = await db.execute<{ counts: number[] }>(sql`
    with ${grid(r)},
    slots as (
      select array_agg(b order by b) as starts, array_agg(hod order by b) as hods from hour_starts
    ),
    ranges as (
      select width_bucket(l.s, x.starts) as first_slot, width_bucket(l.e - interval '1 microsecond', x.starts) as last_slot
      from live l, slots x
    ),
    masks as (
      select (
        select bit_or(1 << x.hods[i]) from generate_series(r.first_slot, least(r.last_slot, r.first_slot + 49)) i
      ) as mask
      from ranges r, slots x
    ),
    -- Sessions share few masks (runs of consecutive hours): count those, then spread them.
    by_mask as (
      select mask, count(*) as n from masks group by mask
    )
    select array(
      select coalesce(sum(n), 0)::int from generate_series(0, 23) h left join by_mask on mask & (1 << h) <> 0 group by h order by h
    ) as counts`)
  return row!.counts
}

/** Counts and durations of sessions created in the range; end reasons of those that ended in it. */
async function summary(db: Runner, r: AnalyticsRange) {
  const [row] = await db.execute<{ total: number; average: number | null; median: number | null; reasons: Record<string, number> }>(sql`
    with created as (
      select created_at, ended_at from sessions where created_at >= ${r.from} and created_at < ${r.to}
    ),
    durations as (
      select extract(epoch from ended_at - created_at)::float8 as secs from created where ended_at is not null
    )
    select
      (select count(*) from created)::int as total,
      (select avg(secs) from durations) as average,
      (select percentile_cont(0.5) within group (order by secs) from durations) as median,
      (select coalesce(jsonb_object_agg(reason, n), '{}'::jsonb) from (
         select coalesce(end_reason, 'unknown') as reason, count(*)::int as n from sessions
         where ended_at >= ${r.from} and ended_at < ${r.to} group by 1
       ) e) as reasons`)
  return row!
}

export async function sessionAnalytics(db: Db, r: AnalyticsRange): Promise<SessionAnalytics> {
  // One snapshot for the three statements, so the figures agree with each other.
  const [buckets, activeByHourOfDay, sums] = await db.transaction((tx) => Promise.all([peaks(tx, r), hourOfDay(tx, r), summary(tx, r)]), {
    isolationLevel: 'repeatable read',
    accessMode: 'read only',
  })
  // The earliest bucket with the highest peak holds the instant it was first reached.
  let overall = { at: r.from.toISOString(), sessions: 0 }
  for (const b of buckets) if (b.peak > overall.sessions) overall = { at: b.peak_at.toISOString(), sessions: b.peak }
  return {
    totalSessions: sums.total,
    averageDurationSeconds: sums.average ?? 0,
    medianDurationSeconds: sums.median ?? 0,
    peakConcurrent: buckets.map((b) => ({ bucketStart: b.bucket_start.toISOString(), peak: b.peak })),
    overallPeak: overall,
    activeByHourOfDay,
    endReasons: sums.reasons,
  }
}

/** The zone names PostgreSQL accepts, keyed by lower case (zone names are case-insensitive there). */
export async function timeZoneNames(db: Db): Promise<Map<string, string>> {
  const rows = await db.execute<{ name: string }>(sql`select name from pg_timezone_names`)
  return new Map(rows.map((r) => [r.name.toLowerCase(), r.name]))
}
