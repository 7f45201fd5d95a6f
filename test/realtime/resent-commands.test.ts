// ioredis sends the commands still waiting for an answer again after it reconnects. A
// command Redis had already run when the connection dropped then runs twice: each write
// that can be caught that way must do its work once.
import type { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { connectRedis } from '../../src/infra/redis.js'
import { build, testRedisUrl } from '../helpers/app.js'
import { type Pipe, TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

async function inspector(t: Test): Promise<Redis> {
  const redis = await connectRedis(testRedisUrl(), 'tessera-test-inspector')
  t.teardown(() => redis.quit())
  return redis
}

/**
 * The held command reaches Redis, but its answer never reaches the app: once `ran` says
 * Redis has run it, the connection is cut, and ioredis sends it again on the next one.
 */
async function loseTheAnswer(proxy: TcpProxy, pipe: Pipe, ran: () => Promise<boolean>) {
  pipe.server.removeAllListeners('data')
  for (const chunk of pipe.held!.splice(0)) pipe.server.write(chunk)
  await until('Redis has run the command', ran)
  proxy.release()
  proxy.drop((p) => p === pipe)
}

t.test('an event whose publish was in flight when the connection dropped is published once', async (t) => {
  // issue 12, defect 15: the re-sent script published it again under a new seq.
  const proxy = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis: proxy } })
  const redis = await inspector(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })
  const keepUntil = new Date(Date.now() + 3_600_000)
  const publish = (lastActivity: string) => app.ctx.bus.publishSessionEvent(sessionId, { type: 'session.active', lastActivity }, keepUntil)
  t.equal(await publish('first'), 1)

  const sending = proxy.hold((_pipe, chunk) => chunk.includes('in-flight'))
  const inFlight = publish('in-flight')
  await loseTheAnswer(proxy, await sending, async () => (await redis.get(app.ctx.keys.sessionSeq(sessionId))) === '2')
  t.equal(await inFlight, 2, 'the publish resolves with the seq it was given')

  t.equal(await publish('after'), 3, 'the next event follows it')
  await tab.next((m) => m.lastActivity === 'after')
  t.same(
    tab.logged().map((m) => `${m.seq}:${m.lastActivity}`),
    ['1:first', '2:in-flight', '3:after'],
    'each event once',
  )
  t.equal(await redis.xlen(app.ctx.keys.sessionLog(sessionId)), 3, 'and once in the log')
})

t.test('a state-writing mark whose begin was sent again is still taken back by its end', async (t) => {
  // issue 12, defect 15: the re-sent begin counted the write twice and its end once, so
  // the mark stayed (every session_state read of the user went to PostgreSQL until it lapsed).
  const proxy = await TcpProxy.to(t, testRedisUrl())
  const app = await build(t, {}, { via: { redis: proxy } })
  const redis = await inspector(t)
  const { id: userId, platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const ada = await app.client().signIn('ada')
  const writing = app.ctx.keys.userStateWriting(userId)

  // The begin script is the one command that names the mark and its 30 s lapse.
  const beginning = proxy.hold((_pipe, chunk) => chunk.includes(writing) && chunk.includes('\r\n30000\r\n'))
  const switching = ada.post(`/api/switch_platform/${platformIds[1]}`)
  await loseTheAnswer(proxy, await beginning, async () => (await redis.exists(writing)) === 1)
  t.equal((await switching).statusCode, 200, 'the switch succeeds')
  t.equal(await redis.exists(writing), 0, 'and no write is marked as under way after it')
})
