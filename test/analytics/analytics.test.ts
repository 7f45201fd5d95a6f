// GET /admin/sessions/analytics (http.md, "Admin"; definitions in docs/admin.md, "Analytics")
// on fixtures of sessions inserted with SQL, every expectation worked out by hand.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { ADMIN_PASSWORD, build, type TestApp } from '../helpers/app.js'

/** [created_at, ended_at or null for a session still open, end_reason] */
type Row = [string, string | null, string | null]

async function insertSessions(app: TestApp, userId: number, rows: Row[]) {
  const { sql } = app.ctx.database
  for (const [created, ended, reason] of rows) {
    await sql`insert into sessions (id, user_id, token_hash, status, created_at, ended_at, end_reason, expires_at, last_activity)
      values (gen_random_uuid(), ${userId}, ${randomBytes(32).toString('hex')}, ${ended ? 'ended' : 'active'},
              ${created}, ${ended}, ${reason}, ${created}::timestamptz + interval '2 days', coalesce(${ended}::timestamptz, ${created}::timestamptz))`
  }
}

const hours = (...counts: [number, number][]) => {
  const all = Array.from({ length: 24 }, () => 0)
  for (const [h, n] of counts) all[h] = n
  return all
}

const query = (params: Record<string, string>) => `/admin/sessions/analytics?${new URLSearchParams(params)}`

// 2026-01-10, UTC. Clipped to [00:00, 06:00) where a query uses that range.
const JANUARY: Row[] = [
  ['2026-01-09T20:00:00Z', '2026-01-09T21:00:00Z', 'logout'], // I: before the range
  ['2026-01-09T22:00:00Z', '2026-01-10T01:30:00Z', 'logout'], // A: started before `from`
  ['2026-01-10T00:30:00Z', '2026-01-10T02:00:00Z', 'idle_timeout'], // B
  ['2026-01-10T01:00:00Z', '2026-01-10T02:00:00Z', 'admin'], // D
  ['2026-01-10T02:00:00Z', '2026-01-10T03:15:00Z', 'logout'], // C: starts as B and D end
  ['2026-01-10T03:15:00Z', null, null], // E: still open, starts as C ends
  ['2026-01-10T04:10:00Z', '2026-01-10T04:20:00Z', 'logout'], // F
  ['2026-01-10T04:20:00Z', '2026-01-10T04:50:00Z', 'logout'], // G: starts as F ends
  ['2026-01-10T05:30:00Z', '2026-01-10T07:00:00Z', 'session_limit'], // J: ends after `to`
  ['2026-01-10T07:00:00Z', '2026-01-10T08:00:00Z', 'logout'], // H: after the range
]

t.test('hourly analytics in UTC: exact peaks across bucket edges, open sessions, durations, hours, end reasons', async (t) => {
  const app = await build(t)
  const ada = await app.user('ada')
  await insertSessions(app, ada.id, JANUARY)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)

  const res = await admin.get(query({ from: '2026-01-10T00:00:00Z', to: '2026-01-10T06:00:00Z' }))
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), {
    from: '2026-01-10T00:00:00.000Z',
    to: '2026-01-10T06:00:00.000Z',
    bucket: 'hour', // 6 hours ≤ 2 days
    tz: 'UTC',
    // created in [00:00, 06:00): B, D, C, E, F, G, J
    totalSessions: 7,
    // ended ones among them: F 600, G 1800, D 3600, C 4500, B 5400, J 5400 (J ended after `to`: still counted)
    // average 21300 / 6 = 3550; median (3600 + 4500) / 2 = 4050
    averageDurationSeconds: 3550,
    medianDurationSeconds: 4050,
    peakConcurrent: [
      { bucketStart: '2026-01-10T00:00:00.000Z', peak: 2 }, // A carried in, B from 00:30
      { bucketStart: '2026-01-10T01:00:00.000Z', peak: 3 }, // A, B carried in, D at 01:00; A ends 01:30
      { bucketStart: '2026-01-10T02:00:00.000Z', peak: 1 }, // B and D end at 02:00 as C starts: not 3
      { bucketStart: '2026-01-10T03:00:00.000Z', peak: 1 }, // C ends at 03:15 as E starts: not 2
      { bucketStart: '2026-01-10T04:00:00.000Z', peak: 2 }, // E with F, then E with G: not 3
      { bucketStart: '2026-01-10T05:00:00.000Z', peak: 2 }, // E (open: runs until `to`) with J from 05:30
    ],
    overallPeak: { at: '2026-01-10T01:00:00.000Z', sessions: 3 },
    // hour 0: A, B; 1: A, B, D; 2: C; 3: C, E; 4: E, F, G; 5: E, J (B's end at 02:00 is not in hour 2)
    activeByHourOfDay: hours([0, 2], [1, 3], [2, 1], [3, 2], [4, 3], [5, 2]),
    // ended in [00:00, 06:00): A, C, F, G logout; B idle_timeout; D admin (J ends at 07:00)
    endReasons: { logout: 4, idle_timeout: 1, admin: 1 },
  })

  // Asia/Kolkata is UTC+05:30: its hours start at half past a UTC hour, the first one
  // (05:00 local) before `from`.
  const kolkata = (await admin.get(query({ from: '2026-01-10T00:00:00Z', to: '2026-01-10T03:00:00Z', tz: 'Asia/Kolkata' }))).json()
  t.same(kolkata.peakConcurrent, [
    { bucketStart: '2026-01-09T23:30:00.000Z', peak: 1 }, // A (B starts at 00:30: the next bucket)
    { bucketStart: '2026-01-10T00:30:00.000Z', peak: 3 }, // A, B from 00:30, D from 01:00
    { bucketStart: '2026-01-10T01:30:00.000Z', peak: 2 }, // A ends at 01:30: B, D; then C alone
    { bucketStart: '2026-01-10T02:30:00.000Z', peak: 1 }, // C, clipped at `to`
  ])
  t.same(kolkata.overallPeak, { at: '2026-01-10T01:00:00.000Z', sessions: 3 })
  // local hours: A 05:30–07:00 → 5, 6; B 06:00–07:30 → 6, 7; D 06:30–07:30 → 6, 7; C 07:30–08:30 (clipped) → 7, 8
  t.same(kolkata.activeByHourOfDay, hours([5, 1], [6, 3], [7, 3], [8, 1]))

  // Two whole days is still hourly by default; the open session E runs until `to`.
  const twoDays = (await admin.get(query({ from: '2026-01-09T00:00:00Z', to: '2026-01-11T00:00:00Z' }))).json()
  t.equal(twoDays.bucket, 'hour')
  t.equal(twoDays.peakConcurrent.length, 48)
  t.same(twoDays.peakConcurrent.filter((b: { peak: number }) => b.peak > 0).length, 1 + 2 + 24, 'I at 20h; A at 22h, 23h; all day on the 10th (E, open)')
  t.same(twoDays.peakConcurrent[47], { bucketStart: '2026-01-10T23:00:00.000Z', peak: 1 })

  // Days in UTC; an explicit bucket wins over the default.
  const daily = (await admin.get(query({ from: '2026-01-09T00:00:00Z', to: '2026-01-11T00:00:00Z', bucket: 'day' }))).json()
  t.same(daily.peakConcurrent, [
    { bucketStart: '2026-01-09T00:00:00.000Z', peak: 1 }, // I 20–21, then A from 22:00
    { bucketStart: '2026-01-10T00:00:00.000Z', peak: 3 },
  ])
  t.same(daily.endReasons, { logout: 6, idle_timeout: 1, admin: 1, session_limit: 1 })
  t.equal(daily.totalSessions, 10)
})

// Around the end of summer time in Oslo: 2026-10-25 03:00 CEST (01:00Z) becomes 02:00 CET,
// so that local day lasts 25 hours (2026-10-24T22:00Z to 2026-10-25T23:00Z).
const OCTOBER: Row[] = [
  ['2026-10-24T21:30:00Z', '2026-10-24T22:30:00Z', 'logout'], // P: local 23:30–00:30 (CEST), across local midnight
  ['2026-10-25T00:10:00Z', '2026-10-25T00:50:00Z', 'idle_timeout'], // T1: 02:10–02:50 CEST
  ['2026-10-25T01:10:00Z', '2026-10-25T01:50:00Z', 'idle_timeout'], // T2: 02:10–02:50 CET, the repeated hour
  ['2026-10-25T22:15:00Z', '2026-10-25T22:45:00Z', 'lifetime'], // R: 23:15–23:45 CET, still on the 25th
  ['2026-10-25T22:30:00Z', '2026-10-25T23:30:00Z', 'logout'], // S: 23:30–00:30 CET, across local midnight
  ['2026-10-26T10:00:00Z', null, null], // U: 11:00 CET, still open
  ['2026-10-26T12:00:00Z', '2026-10-26T13:00:00Z', 'admin'], // V: 13:00–14:00 CET
]

t.test('daily analytics in Europe/Oslo: local midnights, a 25-hour DST day, the repeated hour', async (t) => {
  const app = await build(t)
  const ada = await app.user('ada')
  await insertSessions(app, ada.id, OCTOBER)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)

  // Local days 24, 25 and 26 October.
  const res = await admin.get(query({ from: '2026-10-24T00:00:00+02:00', to: '2026-10-27T00:00:00+01:00', bucket: 'day', tz: 'Europe/Oslo' }))
  t.equal(res.statusCode, 200, res.body)
  t.same(res.json(), {
    from: '2026-10-23T22:00:00.000Z',
    to: '2026-10-26T23:00:00.000Z',
    bucket: 'day',
    tz: 'Europe/Oslo',
    totalSessions: 7,
    // R 1800, T1 2400, T2 2400, P 3600, S 3600, V 3600: average 17400 / 6 = 2900, median (2400 + 3600) / 2
    averageDurationSeconds: 2900,
    medianDurationSeconds: 3000,
    peakConcurrent: [
      { bucketStart: '2026-10-23T22:00:00.000Z', peak: 1 }, // the 24th: P from 23:30 local
      { bucketStart: '2026-10-24T22:00:00.000Z', peak: 2 }, // the 25th (25 h): R and S from 22:30Z
      { bucketStart: '2026-10-25T23:00:00.000Z', peak: 2 }, // the 26th: S carried in; U (open) with V
    ],
    overallPeak: { at: '2026-10-25T22:30:00.000Z', sessions: 2 },
    // local hour 0: P, S; 2: T1, T2 (one each in the two 02:00 hours); 11–22: U (13: and V);
    // 23: P, R, S and U (open, runs until `to`: local midnight)
    activeByHourOfDay: hours([0, 2], [2, 2], [11, 1], [12, 1], [13, 2], [14, 1], [15, 1], [16, 1], [17, 1], [18, 1], [19, 1], [20, 1], [21, 1], [22, 1], [23, 4]),
    endReasons: { logout: 2, idle_timeout: 2, lifetime: 1, admin: 1 },
  })

  // The two local 02:00 hours are buckets of their own; zone names are case-insensitive.
  const night = (await admin.get(query({ from: '2026-10-25T00:00:00Z', to: '2026-10-25T03:00:00Z', tz: 'europe/oslo' }))).json()
  t.equal(night.tz, 'Europe/Oslo')
  t.same(night.peakConcurrent, [
    { bucketStart: '2026-10-25T00:00:00.000Z', peak: 1 }, // 02:00 CEST: T1
    { bucketStart: '2026-10-25T01:00:00.000Z', peak: 1 }, // 02:00 CET: T2
    { bucketStart: '2026-10-25T02:00:00.000Z', peak: 0 }, // 03:00 CET
  ])
  t.same(night.activeByHourOfDay, hours([2, 2]))

  // Spring: 2026-03-29 02:00 CET becomes 03:00 CEST, a 23-hour day. Nothing ran: every
  // bucket is listed with 0, and the figures without data are 0.
  const spring = await admin.get(query({ from: '2026-03-28T00:00:00+01:00', to: '2026-03-30T00:00:00+02:00', bucket: 'day', tz: 'Europe/Oslo' }))
  t.same(spring.json(), {
    from: '2026-03-27T23:00:00.000Z',
    to: '2026-03-29T22:00:00.000Z',
    bucket: 'day',
    tz: 'Europe/Oslo',
    totalSessions: 0,
    averageDurationSeconds: 0,
    medianDurationSeconds: 0,
    peakConcurrent: [
      { bucketStart: '2026-03-27T23:00:00.000Z', peak: 0 },
      { bucketStart: '2026-03-28T23:00:00.000Z', peak: 0 },
    ],
    overallPeak: { at: '2026-03-27T23:00:00.000Z', sessions: 0 },
    activeByHourOfDay: hours(),
    endReasons: {},
  })
  const springHours = (await admin.get(query({ from: '2026-03-29T00:00:00Z', to: '2026-03-29T02:00:00Z', tz: 'Europe/Oslo' }))).json()
  t.same(
    springHours.peakConcurrent.map((b: { bucketStart: string }) => b.bucketStart),
    ['2026-03-29T00:00:00.000Z', '2026-03-29T01:00:00.000Z'],
    '01:00 CET, then 03:00 CEST: no 02:00 that day',
  )
})

t.test('a session over several days counts once for each hour of the day', async (t) => {
  const app = await build(t)
  const ada = await app.user('ada')
  // 2 days and 30 minutes: 174600 seconds.
  await insertSessions(app, ada.id, [['2026-02-01T10:00:00Z', '2026-02-03T10:30:00Z', 'logout']])
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const res = (await admin.get(query({ from: '2026-02-01T00:00:00Z', to: '2026-02-05T00:00:00Z' }))).json()
  t.equal(res.bucket, 'day', 'four days: daily by default')
  t.same(res.activeByHourOfDay, Array.from({ length: 24 }, () => 1))
  t.same(
    res.peakConcurrent.map((b: { peak: number }) => b.peak),
    [1, 1, 1, 0],
  )
  t.match(res, { totalSessions: 1, averageDurationSeconds: 174600, medianDurationSeconds: 174600, endReasons: { logout: 1 } })
})

t.test('defaults, validation, who may ask, and the static path beside /admin/sessions/:id', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)

  const before = Date.now()
  const res = await admin.get('/admin/sessions/analytics')
  t.equal(res.statusCode, 200, 'the analytics route answers, not GET /admin/sessions/:id with id "analytics"')
  const body = res.json()
  const to = Date.parse(body.to)
  t.ok(to >= before - 1000 && to <= Date.now() + 1000, 'to defaults to now')
  t.equal(to - Date.parse(body.from), 7 * 24 * 3600 * 1000, 'from defaults to 7 days before to')
  t.match(body, { bucket: 'day', tz: 'UTC' })
  t.ok(body.peakConcurrent.length === 7 || body.peakConcurrent.length === 8)
  t.equal(body.activeByHourOfDay.length, 24)
  t.equal((await admin.get('/admin/sessions/00000000-0000-4000-8000-000000000000')).json().error.code, 'SESSION_NOT_FOUND', 'the parametric route still works')

  const bad: Record<string, string>[] = [
    { from: 'yesterday' },
    { to: '2026-01-10' }, // a date without a time
    { from: '2026-01-10T00:00:00' }, // no offset
    { bucket: 'week' },
    { tz: 'Mars/Olympus_Mons' },
    { tz: '+05:00' },
    { tz: '' },
    { from: '2026-01-11T00:00:00Z', to: '2026-01-10T00:00:00Z' }, // reversed
    { from: '2026-01-10T00:00:00Z', to: '2026-01-10T00:00:00Z' }, // empty
    { from: '2099-01-01T00:00:00Z' }, // after the default `to` (now)
    { from: '2025-01-01T00:00:00Z', to: '2026-01-03T00:00:00Z' }, // 367 days
    { extra: '1' },
  ]
  for (const params of bad) {
    const r = await admin.get(query(params))
    t.equal(r.statusCode, 400, JSON.stringify(params))
    t.equal(r.json().error.code, 'VALIDATION_FAILED', r.body)
  }
  t.match((await admin.get(query({ tz: 'Nowhere/Town' }))).json().error.message, /querystring\.tz/)
  t.match((await admin.get(query({ from: '2026-01-11T00:00:00Z', to: '2026-01-10T00:00:00Z' }))).json().error.message, /querystring\.from/)
  t.equal((await admin.get(query({ from: '2025-01-02T00:00:00Z', to: '2026-01-03T00:00:00Z' }))).statusCode, 200, '366 days is allowed')

  const ada = await app.client().signIn('ada')
  const forbidden = await ada.get('/admin/sessions/analytics')
  t.equal(forbidden.statusCode, 403)
  t.equal(forbidden.json().error.code, 'FORBIDDEN')
  const anon = await app.client().get('/admin/sessions/analytics')
  t.equal(anon.statusCode, 401)
  t.equal(anon.json().error.code, 'UNAUTHENTICATED')
})
