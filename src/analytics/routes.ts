// GET /admin/sessions/analytics (docs/api.md, "Admin"): capacity figures over a time range.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { type Static, Type } from 'typebox'
import { requireAdmin } from '../auth/admin-guard.js'
import { rangeNotForward, rangeTooLong, tooManyBuckets, unknownTimeZone } from './errors.js'
import { errors, IsoTime } from '../infra/schemas.js'
import { type Bucket, sessionAnalytics, timeZoneNames } from './queries.js'

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const DEFAULT_RANGE_MS = 7 * DAY_MS
/** Up to this range the default bucket is an hour, beyond it a day. */
const HOURLY_UP_TO_MS = 2 * DAY_MS
const MAX_RANGE_MS = 366 * DAY_MS
const MAX_BUCKETS = 10_000

const BucketName = Type.Union([Type.Literal('hour'), Type.Literal('day')])

const AnalyticsQuery = Type.Object(
  {
    from: Type.Optional(IsoTime),
    to: Type.Optional(IsoTime),
    bucket: Type.Optional(BucketName),
    tz: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
)

const AnalyticsBody = Type.Object({
  from: IsoTime,
  to: IsoTime,
  bucket: BucketName,
  tz: Type.String(),
  totalSessions: Type.Integer(),
  averageDurationSeconds: Type.Number(),
  medianDurationSeconds: Type.Number(),
  peakConcurrent: Type.Array(Type.Object({ bucketStart: IsoTime, peak: Type.Integer() })),
  overallPeak: Type.Object({ at: IsoTime, sessions: Type.Integer() }),
  activeByHourOfDay: Type.Array(Type.Integer(), { minItems: 24, maxItems: 24 }),
  endReasons: Type.Record(Type.String(), Type.Integer()),
})

/** The range asked for, with its defaults, checked against the limits. */
function rangeOf(q: Static<typeof AnalyticsQuery>, now: Date) {
  const to = q.to === undefined ? now : new Date(q.to)
  const from = q.from === undefined ? new Date(to.getTime() - DEFAULT_RANGE_MS) : new Date(q.from)
  const span = to.getTime() - from.getTime()
  if (span <= 0) throw rangeNotForward()
  if (span > MAX_RANGE_MS) throw rangeTooLong()
  const bucket: Bucket = q.bucket ?? (span <= HOURLY_UP_TO_MS ? 'hour' : 'day')
  // One more than whole spans: the first bucket may start before `from`. With 366 days this
  // cannot be exceeded by hours or days; it guards a finer bucket added later.
  const buckets = Math.ceil(span / (bucket === 'hour' ? HOUR_MS : DAY_MS)) + 1
  if (buckets > MAX_BUCKETS) throw tooManyBuckets(buckets, MAX_BUCKETS)
  return { from, to, bucket }
}

export const analyticsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const admin = requireAdmin(app)
  const { db } = app.database
  // Read once: listing the zones costs PostgreSQL ~100 ms, and the list only changes with an upgrade.
  let zones: Promise<Map<string, string>> | undefined

  app.get(
    '/admin/sessions/analytics',
    {
      onRequest: admin,
      schema: {
        tags: ['admin'],
        summary: 'Session analytics: peak concurrency per bucket, durations, hours of day, end reasons',
        querystring: AnalyticsQuery,
        response: { 200: AnalyticsBody, ...errors },
      },
    },
    async (req) => {
      const q = req.query
      const now = new Date()
      const { from, to, bucket } = rangeOf(q, now)
      zones ??= timeZoneNames(db).catch((err) => {
        zones = undefined
        throw err
      })
      const tz = (await zones).get((q.tz ?? 'UTC').toLowerCase())
      if (tz === undefined) throw unknownTimeZone()
      const result = await sessionAnalytics(db, { from, to, bucket, tz, now })
      return { from: from.toISOString(), to: to.toISOString(), bucket, tz, ...result }
    },
  )
}
