// Redis away (quality.md R1): /readyz answers 503 naming the check that fails, routes that
// need Redis answer 503 SERVICE_UNAVAILABLE, and both recover once Redis is back.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { build } from '../helpers/app.js'
import { privateRedis } from '../helpers/private-redis.js'

t.test('with Redis stopped: /readyz 503 names redis, API routes 503, /healthz 200; then recovery', async (t) => {
  const redis = await privateRedis(t)
  const app = await build(t, { REDIS_URL: redis.url })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  t.equal((await app.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)

  await redis.stop()
  const ready = await app.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  const body = ready.json()
  t.equal(body.status, 'unavailable')
  t.equal(body.checks.redis.ok, false, 'the failing check is named')
  t.type(body.checks.redis.error, 'string')
  t.equal(body.checks.postgres.ok, true, 'PostgreSQL is fine')

  const state = await ada.get('/api/session_state')
  t.equal(state.statusCode, 503)
  t.match(state.json(), { error: { code: 'SERVICE_UNAVAILABLE', message: /Redis/ } })
  t.ok(Number(state.headers['retry-after']) > 0, 'with Retry-After')
  t.equal((await app.client().login('ada')).statusCode, 503, 'login too (its rate limit lives in Redis)')
  t.equal((await app.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the process is still up')

  await redis.start()
  let res = await ada.get('/api/session_state')
  for (let i = 0; i < 100 && res.statusCode !== 200; i++) {
    await sleep(100)
    res = await ada.get('/api/session_state')
  }
  t.equal(res.statusCode, 200, 'the session is valid again (rehydrated from PostgreSQL)')
  t.equal((await app.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
})
