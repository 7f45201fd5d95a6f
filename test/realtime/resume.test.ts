import t from 'tap'
import { build, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

/** A second API node on the same PostgreSQL and Redis. */
async function secondNode(app: TestApp) {
  const node = await app.node()
  return { node, address: await listen(node) }
}

const turns = new WeakMap<object, number>()

/** n switches, each to a platform other than the current one (the first platform is the default). */
async function switches(client: Awaited<ReturnType<TestApp['client']>>, platformIds: number[], n: number) {
  for (let i = 0; i < n; i++) {
    const turn = (turns.get(client) ?? 0) + 1
    turns.set(client, turn)
    const res = await client.post(`/api/switch_platform/${platformIds[turn % platformIds.length]}`)
    if (res.statusCode !== 200) throw new Error(res.body)
  }
}

t.test('tabs of one session on two nodes see the same events in the same order', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1', 'P2'] })
  const one = await listen(app)
  const { address: two } = await secondNode(app)
  const ada = await app.client().signIn('ada')
  const a = await openTab(one, ada.sid!, { tabId: 'A' })
  const b = await openTab(two, ada.sid!, { tabId: 'B' })
  await switches(ada, platformIds, 12)
  await a.tab.next((m) => m.seq === 12)
  await b.tab.next((m) => m.seq === 12)
  const seqs = (tab: typeof a.tab) => tab.logged().map((m) => `${m.seq}:${(m.platform as { id: number }).id}`)
  t.same(seqs(a.tab), seqs(b.tab))
  t.same(
    a.tab.logged().map((m) => m.seq),
    Array.from({ length: 12 }, (_, i) => i + 1),
  )
})

t.test('a tab that missed N events gets exactly those after welcome, on either node', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const one = await listen(app)
  const { address: two } = await secondNode(app)
  const ada = await app.client().signIn('ada')
  const first = await openTab(one, ada.sid!, { tabId: 'A' })
  await switches(ada, platformIds, 3)
  await first.tab.next((m) => m.seq === 3)
  await first.tab.close()
  await switches(ada, platformIds, 7)

  for (const address of [one, two]) {
    const current = (await ada.get('/api/session_state')).json().seq as number
    const again = await openTab(address, ada.sid!, { tabId: 'A', lastSeq: 3 })
    t.match(again.welcome, { seq: current, resumed: true, replayed: current - 3 })
    await again.tab.event(current)
    const after = again.tab.messages.slice(again.tab.messages.indexOf(again.welcome) + 1)
    t.same(
      after.map((m) => m.seq),
      Array.from({ length: current - 3 }, (_, i) => i + 4),
      `exactly the missed events, in order, right after welcome (${address === one ? 'same' : 'other'} node)`,
    )
    await switches(ada, platformIds, 1)
    await again.tab.next((m) => m.seq === current + 1)
    t.same(
      again.tab.logged().map((m) => m.seq),
      Array.from({ length: current - 2 }, (_, i) => i + 4),
      'then live events, no gap, no duplicate',
    )
    await again.tab.close()
  }
})

t.test('resuming when nothing was missed replays nothing', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  await switches(ada, platformIds, 2)
  const tab = await openTab(address, ada.sid!, { tabId: 'A', lastSeq: 2 })
  t.match(tab.welcome, { seq: 2, resumed: true, replayed: 0 })
  t.equal((await app.ctx.metrics.resumes.get()).values[0]?.value, 1, 'and it counts as a resume')
})

t.test('when the log no longer covers the gap, the tab gets one resync', async (t) => {
  const app = await build(t, { EVENT_LOG_MAX: '5' })
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  // XADD MAXLEN ~ trims whole nodes only: write enough that the oldest are surely gone.
  await switches(ada, platformIds, 400)
  const resumed = await openTab(address, ada.sid!, { tabId: 'A', lastSeq: 1 })
  t.match(resumed.welcome, { seq: 400, resumed: false, replayed: 0 })
  const resync = await resumed.tab.type('session.state')
  t.match(resync, { resync: true, seq: 400, state: { version: 401 } })
  t.equal(resumed.tab.messages.filter((m) => m.type === 'session.state').length, 1)
  await switches(ada, platformIds, 1)
  t.match(await resumed.tab.next((m) => m.type === 'platform.switched'), { seq: 401 }, 'live events follow the resync')

  const future = await openTab(address, ada.sid!, { tabId: 'B', lastSeq: 9999 })
  t.match(future.welcome, { resumed: false })
  t.match(await future.tab.type('session.state'), { resync: true, seq: 401 }, 'a lastSeq from the future (Redis lost the log) resyncs')
})

t.test('after Redis lost everything, a reconnecting tab resyncs and the events after it follow on its seq', async (t) => {
  // issue 12, defect 1: a new numbering starts above every old seq, never at 1 again.
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['P0', 'P1'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  await switches(ada, platformIds, 3)
  const { deleteKeysWithPrefix } = await import('../../src/infra/redis.js')
  await deleteKeysWithPrefix(app.resources.redis, app.prefix)
  const tab = await openTab(address, ada.sid!, { tabId: 'A', lastSeq: 3 })
  const resync = await tab.tab.type('session.state')
  t.match(resync, { resync: true, seq: Number, state: { platform: { id: platformIds[1] } } })
  t.ok(resync.seq! > 3, `the new numbering (${resync.seq}) is above the old lastSeq`)
  await switches(ada, platformIds, 1)
  t.match(await tab.tab.type('platform.switched'), { seq: resync.seq! + 1 }, 'the next event follows the resync')
  t.equal(tab.tab.messages.filter((m) => m.type === 'session.state').length, 1, 'one resync only')
})
