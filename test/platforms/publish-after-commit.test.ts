// A platform change is committed in PostgreSQL before its event is published in Redis. When
// Redis fails in between, the change must still reach every tab of the session.
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { build, testDatabaseUrl, testRedisUrl } from '../helpers/app.js'
import { isSubscriber, TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

async function proxies(t: Teardown) {
  return { postgres: await TcpProxy.to(t, testDatabaseUrl('postgres')), redis: await TcpProxy.to(t, testRedisUrl()) }
}

/**
 * Runs `request`, holding its transaction at the statement that `sqlText` starts, while
 * Redis becomes unreachable for the node (its subscriber aside, so the tabs stay); then
 * lets the transaction commit, with Redis still away. Resolves with the answer, Redis back.
 */
async function withRedisLostDuringCommit(via: Awaited<ReturnType<typeof proxies>>, sqlText: string, request: () => Promise<LightMyRequestResponse>) {
  const inTransaction = via.postgres.hold((_pipe, chunk) => chunk.includes(sqlText))
  let answer: LightMyRequestResponse | null = null
  void request().then((res) => {
    answer = res
  })
  await inTransaction
  via.redis.hold((pipe) => !isSubscriber(pipe))
  via.redis.drop((pipe) => !isSubscriber(pipe))
  via.postgres.release()
  const res = await until('the request to be answered', () => {
    via.redis.drop((pipe) => pipe.held !== null) // reconnections too
    return answer
  })
  via.redis.release()
  return res
}

t.test('a switch committed while its publish failed reaches the other tabs when it is retried', async (t) => {
  // issue 12, defect 5
  const via = await proxies(t)
  const app = await build(t, {}, { via })
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const [, mastodon] = platformIds
  const ada = await app.client().signIn('ada')
  const { tab: other } = await openTab(await listen(app), ada.sid!, { tabId: 'B' })

  const cut = await withRedisLostDuringCommit(via, 'update sessions set active_platform_id', () =>
    ada.post(`/api/switch_platform/${mastodon}`, {}, { 'x-tab-id': 'A' }),
  )
  t.equal(cut.statusCode, 503, 'the switch answers that something failed')
  const [row] = await app.ctx.database.sql`select active_platform_id from sessions where id = ${ada.sessionId!}`
  t.equal(row!.active_platform_id, mastodon, 'but PostgreSQL holds it')

  await until('Redis to be reachable again', () => app.ctx.redis.status === 'ready')
  const retry = await ada.post(`/api/switch_platform/${mastodon}`, {}, { 'x-tab-id': 'A' })
  t.equal(retry.statusCode, 200)
  t.match(await other.next((m) => m.type === 'platform.switched'), { platform: { id: mastodon }, version: retry.json().version }, 'the other tab moves to Mastodon')
})

t.test('a platform deletion committed while its publish failed reaches the tabs by itself (repair pass)', async (t) => {
  // issue 12, defect 5
  const via = await proxies(t)
  const app = await build(t, {}, { via, workers: true })
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const [pixelfed] = platformIds
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(await listen(app), ada.sid!, { tabId: 'A' })

  const cut = await withRedisLostDuringCommit(via, 'delete from "platforms"', () => ada.delete(`/api/platforms/${pixelfed}`))
  t.equal(cut.statusCode, 503)
  t.equal((await app.ctx.database.sql`select 1 from platforms where id = ${pixelfed!}`).length, 0, 'the deletion is committed')

  // Nobody retries: the workers' repair pass publishes what was committed.
  t.match(await tab.next((m) => m.type === 'platform.switched', 30_000), { platform: null, previousPlatform: { id: pixelfed } }, 'the tab leaves the deleted platform')
  t.equal((await ada.get('/api/session_state')).json().platform, null)
})
