// Admin rights follow the account's role in PostgreSQL, whatever the token cache holds.
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { ADMIN_PASSWORD, build, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'

t.test('an admin demoted by a change cut short after its commit loses admin rights all the same', async (t) => {
  // issue 12, defect 11
  const via = { postgres: await TcpProxy.to(t, testDatabaseUrl('postgres')), redis: await TcpProxy.to(t, testRedisUrl()) }
  const app = await build(t, {}, { via })
  const { id } = await app.user('ada', { role: 'admin' })
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  t.equal((await ada.get('/admin/users')).statusCode, 200, 'ada is an admin')

  // The demotion commits, but Redis is unreachable from its UPDATE on: the steps after
  // the commit (refreshing the cached session records among them) fail.
  const updating = via.postgres.hold((_pipe, chunk) => chunk.includes('update "users" set'))
  let answer: LightMyRequestResponse | null = null
  void admin.patch(`/admin/users/${id}`, { role: 'user' }).then((res) => {
    answer = res
  })
  await updating
  via.redis.hold((pipe) => !isSubscriber(pipe))
  via.redis.drop((pipe) => !isSubscriber(pipe))
  via.postgres.release()
  const res = await until('the change to be answered', () => {
    via.redis.drop((pipe) => pipe.held !== null) // reconnections too
    return answer
  })
  via.redis.release()
  t.equal(res.statusCode, 503, 'the change was cut short')
  const [row] = await app.ctx.database.sql`select role from users where id = ${id}`
  t.equal(row!.role, 'user', 'after its commit')

  await until('Redis to be reachable again', () => app.ctx.redis.status === 'ready')
  const denied = await ada.get('/admin/users')
  t.equal(denied.statusCode, 403, 'her session has no admin rights left')
  t.equal(denied.json().error.code, 'FORBIDDEN')
  t.equal((await ada.get('/api/session_state')).json().user.role, 'user', 'and its cached record was put right on the way')
})
