// A login commits its session in PostgreSQL, then does its Redis steps (deadline lists,
// announcing the sessions it ended). Redis failing in between must not cost the user the
// cookie of a session that exists, counts against the limit and may have ended another.
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { build, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'

t.test('a login whose session committed while Redis failed still answers with its cookie', async (t) => {
  // issue 12, defect 10
  const via = { postgres: await TcpProxy.to(t, testDatabaseUrl('postgres')), redis: await TcpProxy.to(t, testRedisUrl()) }
  const app = await build(t, {}, { via })
  const { id } = await app.user('ada')
  await app.ctx.settings.update({ concurrentLimits: { default: 1 }, limitPolicy: 'terminate_oldest' }, id)
  const laptop = await app.client().signIn('ada')

  // The login's transaction is held at its INSERT (the first statement that carries the
  // phone's user agent; the statement itself is prepared already) while Redis becomes
  // unreachable, then commits.
  const userAgent = 'Mozilla/5.0 (Linux; Android 15; Pixel 9) Chrome/140.0 Mobile Safari/537.36'
  const inserting = via.postgres.hold((_pipe, chunk) => chunk.includes(userAgent))
  const phone = app.client({ 'user-agent': userAgent })
  let answer: LightMyRequestResponse | null = null
  void phone.login('ada').then((res) => {
    answer = res
  })
  await inserting
  via.redis.hold((pipe) => !isSubscriber(pipe))
  via.redis.drop((pipe) => !isSubscriber(pipe))
  via.postgres.release()
  const res = await until('the login to be answered', () => {
    via.redis.drop((pipe) => pipe.held !== null) // reconnections too
    return answer
  })
  via.redis.release()

  t.equal(res.statusCode, 200, 'the login succeeded')
  t.ok(phone.sid, 'with its cookie')
  t.match(res.json(), { session: { id: phone.sessionId, tabs: 0 }, csrfToken: String })
  const rows = await app.ctx.database.sql`select id, status, end_reason from sessions where user_id = ${id} order by created_at`
  t.same(
    rows.map((r) => [r.id, r.status, r.end_reason]),
    [
      [laptop.sessionId, 'ended', 'session_limit'],
      [phone.sessionId, 'active', null],
    ],
    'the session limit ended the laptop for the phone',
  )
  await until('Redis to be reachable again', () => app.ctx.redis.status === 'ready')
  t.equal((await phone.get('/api/session_state')).statusCode, 200, 'the cookie works once Redis is back')
})
