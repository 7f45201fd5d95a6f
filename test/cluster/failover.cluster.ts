// On a Redis Cluster (a private one: 3 primaries, 3 replicas), the primary that owns a
// session's slot is killed while its tabs stay connected. Its replica takes over; the node's
// shard subscriber follows it and every tab catches up from the session's log: each tab
// sees every seq, in order, with no gap and no resync. Run by `npm run test:cluster`.
import { Redis, type Cluster } from 'ioredis'
import t from 'tap'
import { build } from '../helpers/app.js'
import { privateCluster } from '../helpers/private-cluster.js'
import { until } from '../helpers/wait.js'
import { listen, openTab } from '../helpers/ws.js'

/** The replication offset a node has reached (`master_repl_offset` for a primary, `slave_repl_offset` for a replica). */
async function offset(port: number, field: 'master_repl_offset' | 'slave_repl_offset'): Promise<number> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    const info = await r.info('replication')
    return Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1)
  } finally {
    r.disconnect()
  }
}

t.test('a primary killed under live tabs: its replica takes over and the tabs resume with no gap', async (t) => {
  const cluster = await privateCluster()
  const app = await build(t, { REDIS_CLUSTER_NODES: cluster.seeds.join(',') })
  t.teardown(() => cluster.stop()) // after the app's own teardown (registered first)
  await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const sessionId = ada.sessionId!
  const a = await openTab(address, ada.sid!, { tabId: 'A' })
  const b = await openTab(address, ada.sid!, { tabId: 'B' })
  const [pixelfed, mastodon] = (await ada.get('/api/platforms')).json().items as { id: number }[]

  // A switch answers 200 once Redis can be reached; during the failover it may answer 503.
  let published = 0
  const target = [mastodon!.id, pixelfed!.id]
  const switchOnce = async () => {
    for (;;) {
      const res = await ada.post(`/api/switch_platform/${target[published % 2]}`, {}, { 'x-tab-id': 'A' })
      if (res.statusCode === 200) {
        published++
        return
      }
      t.equal(res.statusCode, 503, `only 503 while the cluster fails over (got ${res.statusCode} ${res.body})`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  for (let i = 0; i < 3; i++) await switchOnce()
  for (const { tab } of [a, b]) await tab.event(3, 10_000)

  // The primary that owns the session's slot, and its replica, caught up.
  const redis = app.resources.redis as unknown as Cluster
  const slot = Number(await redis.cluster('KEYSLOT', app.ctx.keys.sessionSeq(sessionId)))
  const nodes = await cluster.nodes()
  const owner = Number(redis.slots[slot]![0]!.split(':')[1])
  t.ok(nodes.some((n) => n.port === owner && n.role === 'master'), `the session's slot ${slot} is on the primary at ${owner}`)
  const replicas = nodes.filter((n) => n.role === 'slave').map((n) => n.port)
  const target_offset = await offset(owner, 'master_repl_offset')
  await until('a replica has every write of the primary', async () => {
    for (const p of replicas) if ((await offset(p, 'slave_repl_offset')) >= target_offset) return true
    return false
  })

  await cluster.kill(owner)
  // Events published while the replica takes over (each switch waits for it), one after
  // another: a switch to the platform already active publishes nothing.
  for (let i = 0; i < 3; i++) await switchOnce()
  await cluster.healthy(30_000)
  t.notOk((await cluster.nodes()).some((n) => n.port === owner), 'the killed primary is gone from the cluster')
  for (let i = 0; i < 3; i++) await switchOnce()

  for (const [name, { tab }] of [
    ['A', a],
    ['B', b],
  ] as const) {
    await tab.event(published, 20_000).catch(() => t.comment(`tab ${name} got ${JSON.stringify(tab.messages.map((m) => [m.type, m.seq]))}`))
    const seqs = tab.logged().map((m) => m.seq)
    t.same(
      seqs,
      Array.from({ length: published }, (_, i) => i + 1),
      `tab ${name} saw every seq once, in order`,
    )
    t.notOk(
      tab.messages.some((m) => m.type === 'session.state' && m.resync === true),
      `tab ${name} needed no resync`,
    )
    t.notOk(tab.ws.readyState !== tab.ws.OPEN, `tab ${name} is still connected`)
  }
  const state = (await ada.get('/api/session_state')).json()
  t.equal(state.seq, published, 'session_state has the same seq')
})
