// The admin feed's own Redis listener: a node hears the admin-changes channel only while it
// has admin subscribers, whatever happens to a subscribe half way.
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { connectRedis } from '../../src/infra/redis.js'
import { ADMIN_PASSWORD, build, type TestApp, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

async function inspector(t: Test): Promise<Redis> {
  const redis = await connectRedis(testRedisUrl(), 'tessera-test-inspector')
  t.teardown(() => redis.quit())
  return redis
}

async function listeners(redis: Redis, app: TestApp): Promise<number> {
  const [, n] = (await redis.call('PUBSUB', 'NUMSUB', app.ctx.keys.adminChanges)) as [string, number]
  return Number(n)
}

/** The admin feed's snapshot query (sessions/detail.ts, activeIds), as drizzle writes it. */
const snapshotQuery = (_pipe: unknown, chunk: string) => chunk.includes('select "sessions"."id" from "sessions" inner join "users"')

/** An app whose PostgreSQL traffic can be held, an admin tab, and the inspector. */
async function setup(t: Test) {
  const postgres = await TcpProxy.to(t, testDatabaseUrl('postgres'))
  const app = await build(t, { ADMIN_FEED_INTERVAL_MS: '100' }, { via: { postgres } })
  const address = await listen(app)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab } = await openTab(address, admin.sid!, { tabId: 'admin', view: '/admin' })
  return { app, postgres, tab, redis: await inspector(t), sessionId: admin.sessionId! }
}

t.test('an admin.subscribe whose tab closes while its snapshot is read leaves no listener behind', async (t) => {
  // issue 12, defect 3: PUBSUB NUMSUB stayed at 1 with nobody subscribed.
  const { app, postgres, tab, redis, sessionId } = await setup(t)
  const snapshotting = postgres.hold(snapshotQuery)
  tab.send({ type: 'admin.subscribe' })
  await snapshotting
  t.equal(await listeners(redis, app), 1, 'the node listens while it takes the snapshot')
  await tab.close()
  await until('the tab has left', () => app.hub.tabsOf(sessionId).length === 0)
  postgres.release()
  await until('the node stops listening', async () => (await listeners(redis, app)) === 0, 5000)
  t.pass('nobody listens')
})

t.test('an admin.subscribe whose snapshot query fails leaves no listener behind', async (t) => {
  // issue 12, defect 3
  const { app, postgres, tab, redis } = await setup(t)
  const snapshotting = postgres.hold(snapshotQuery)
  tab.send({ type: 'admin.subscribe' })
  const pipe = await snapshotting
  t.equal(await listeners(redis, app), 1, 'the node listens while it takes the snapshot')
  postgres.drop((p) => p === pipe)
  postgres.release()
  t.match(await tab.type('error'), { code: 'SERVICE_UNAVAILABLE' }, 'the subscribe fails')
  await until('the node stops listening', async () => (await listeners(redis, app)) === 0, 5000)
  t.equal(tab.ws.readyState, tab.ws.OPEN, 'the socket stays open')

  tab.send({ type: 'admin.subscribe' })
  t.match(await tab.type('admin.snapshot'), { total: 1 }, 'and a later subscribe works')
  t.equal(await listeners(redis, app), 1)
})
