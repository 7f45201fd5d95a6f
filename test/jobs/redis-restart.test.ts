// Redis restarted empty under running workers: the sweep's deadline lists and the job
// schedulers are gone with everything else, and must come back without any request.
import t from 'tap'
import { build } from '../helpers/app.js'
import { privateRedis } from '../helpers/private-redis.js'
import { until } from '../helpers/wait.js'

t.test('after Redis restarts empty, a session nobody uses still expires by its idle timeout', async (t) => {
  // issue 12, defect 4
  const redis = await privateRedis(t)
  const app = await build(t, { REDIS_URL: redis.url }, { workers: true })
  await app.user('ada')
  await app.ctx.settings.update({ idleAfterSeconds: 1, idleTimeoutSeconds: 4, idleWarningSeconds: 0 }, 1)
  const ada = await app.client().signIn('ada')

  await redis.restart()
  // Nothing of this session reaches the service again: no request, no tab.
  const row = await until(
    'the idle session to be ended',
    async () => {
      const [r] = await app.ctx.database.sql`select status, end_reason from sessions where id = ${ada.sessionId!}`
      return r?.status === 'ended' ? r : null
    },
    30_000,
  )
  t.equal(row.end_reason, 'idle_timeout')
})
