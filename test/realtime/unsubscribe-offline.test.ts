// A channel given up while Redis is away (the last tab of a session closes, the last admin
// unsubscribes) is not subscribed again when the connection comes back.
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { ADMIN_PASSWORD, build, type TestApp } from '../helpers/app.js'
import { type PrivateRedis, privateRedis } from '../helpers/private-redis.js'
import { sleep, until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

/** How many connections of the private Redis are subscribed to `channel`; 0 while it is down. */
async function numsub(server: PrivateRedis, channel: string): Promise<number> {
  const redis = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    const [, n] = (await redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number]
    return Number(n)
  } catch {
    return 0
  } finally {
    redis.disconnect()
  }
}

/** Stops Redis, runs `meanwhile`, waits out several reconnect attempts, and starts it again (empty). */
async function outage(server: PrivateRedis, meanwhile: () => Promise<void>) {
  await server.stop()
  await meanwhile()
  await sleep(1500) // several failed reconnects: ioredis gives up on queued commands after some
  await server.start()
}

async function appOn(t: Test): Promise<{ app: TestApp; server: PrivateRedis; address: string }> {
  const server = await privateRedis(t)
  const app = await build(t, { REDIS_URL: server.url })
  return { app, server, address: await listen(app) }
}

t.test('a session channel left while Redis is down is not subscribed again after it returns', async (t) => {
  // issue 12, defect 12: the subscriber had enableOfflineQueue false, so its UNSUBSCRIBE
  // failed at once and ioredis re-subscribed the channel after every reconnect.
  const { app, server, address } = await appOn(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const channel = app.ctx.keys.sessionChannel(ada.sessionId!)
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  t.equal(await numsub(server, channel), 1, 'the node hears the session')

  await outage(server, async () => {
    await tab.close()
    await until('the tab has left', () => app.hub.tabsOf(ada.sessionId!).length === 0)
  })
  await until('the subscriber is back', async () => (await numsub(server, app.ctx.keys.broadcastChannel)) === 1, 20_000)
  await until('the session channel is not heard', async () => (await numsub(server, channel)) === 0, 5000)
  t.pass('no subscription without a tab')
})

t.test('the admin feed stops listening when its last admin leaves while Redis is down', async (t) => {
  // issue 12, defect 12: the feed's own listener had the same options.
  const { app, server, address } = await appOn(t)
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const { tab } = await openTab(address, admin.sid!, { tabId: 'admin', view: '/admin' })
  tab.send({ type: 'admin.subscribe' })
  await tab.type('admin.snapshot')
  t.equal(await numsub(server, app.ctx.keys.adminChanges), 1, 'the feed listens')

  await outage(server, async () => {
    tab.send({ type: 'admin.unsubscribe' })
    tab.send({ type: 'ping', id: 'after' })
    await tab.next((m) => m.type === 'pong')
  })
  await until('the subscriber is back', async () => (await numsub(server, app.ctx.keys.broadcastChannel)) === 1, 20_000)
  await sleep(500) // the feed's listener reconnects on its own schedule
  await until('the changes channel is not heard', async () => (await numsub(server, app.ctx.keys.adminChanges)) === 0, 5000)
  t.pass('nobody listens')
})
