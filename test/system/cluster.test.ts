// The deployment's shape as processes (issue 15, "Two-node check without Docker"): two
// ROLE=api nodes and a ROLE=worker behind the Node balancer of `npm run demo:cluster`
// (scripts/cluster/), on a test database. One session's tabs land on different nodes
// and stay in step: a switch served by one node reaches the tab on the other. Then the
// node of one tab is stopped as a deployment stops it (SIGTERM): its tab is closed with
// 1001, comes back through the balancer on the node left, and resumes without a gap.
import t from 'tap'
import { startCluster } from '../../scripts/cluster/cluster.js'
import { projectRoot } from '../../src/infra/db.js'
import { build, PASSWORD } from '../helpers/app.js'
import { processEnv } from '../helpers/process.js'
import { type Message, openTab } from '../helpers/ws.js'
import { sample, until } from '../helpers/wait.js'

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36'
// One browser: the same user agent and language on every request and socket (the session
// is bound to their fingerprint; fetch would send its own accept-language otherwise).
const BROWSER = { 'user-agent': UA, 'accept-language': 'en-GB' }

t.test('a session’s tabs on two nodes behind one balancer stay in step, and a stopped node’s tab moves over', async (t) => {
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon', 'Archive'] })
  // Every process on the test's database and key prefix; PUBLIC_URL is the balancer's.
  const { PUBLIC_URL: _ignored, ...env } = processEnv(app)
  const cluster = await startCluster({ env, command: ['--import', 'tsx', 'src/main.ts'], cwd: projectRoot() })
  t.teardown(() => cluster.stop())
  t.equal(cluster.nodes.length, 2, 'two API nodes')
  t.equal(cluster.workers.length, 1, 'and a worker')
  const origin = new URL(cluster.url).origin
  const address = new URL(cluster.balancer.url).host

  const http = async (method: string, path: string, opts: { sid?: string; csrf?: string; body?: unknown; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { origin, ...BROWSER, ...opts.headers }
    if (opts.sid) headers.cookie = `sid=${opts.sid}`
    if (opts.csrf) headers['x-csrf-token'] = opts.csrf
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(cluster.balancer.url + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
    const text = await res.text()
    return { status: res.status, backend: res.headers.get('x-tessera-backend'), setCookie: res.headers.get('set-cookie') ?? '', json: () => JSON.parse(text) }
  }

  // Sign in through the balancer, with a forged X-Forwarded-For it must not pass on.
  const login = await http('POST', '/api/auth/login', { body: { username: 'ada', password: PASSWORD }, headers: { 'x-forwarded-for': '203.0.113.9' } })
  t.equal(login.status, 200, `signed in through the balancer (served by ${login.backend})`)
  const sid = /sid=([^;]+)/.exec(login.setCookie)![1]!
  const { csrfToken: csrf, session } = login.json()
  const [attempt] = await app.ctx.database.sql`select host(ip) as ip from login_attempts where session_id = ${session.id}`
  t.equal(attempt?.ip, '127.0.0.1', 'the login history has the address the balancer saw, not the forged one')

  // Two tabs of the session: the balancer sends each upgrade to the next node.
  const upgrades = () => cluster.balancer.routed.filter((r) => r.kind === 'upgrade')
  const a = await openTab(address, sid, { tabId: 'A' }, { origin, headers: BROWSER })
  const nodeOfA = upgrades().at(-1)!.backend
  const b = await openTab(address, sid, { tabId: 'B' }, { origin, headers: BROWSER })
  const nodeOfB = upgrades().at(-1)!.backend
  t.not(nodeOfA, nodeOfB, `tab A is on ${nodeOfA}, tab B on ${nodeOfB}`)
  const socketsOn = async (name: string) => sample(await (await fetch(`${cluster.nodes.find((n) => n.name === name)!.url}/metrics`)).text(), 'tessera_ws_sockets')
  await until('each node to hold one socket', async () => (await socketsOn(nodeOfA)) === 1 && (await socketsOn(nodeOfB)) === 1)
  t.pass('each node’s /metrics counts one socket')
  for (const node of cluster.nodes) {
    const text = await (await fetch(`${node.url}/metrics`)).text()
    t.equal(sample(text, 'tessera_ws_handshake_seconds_count', { resumed: 'false' }), 1, `${node.name} timed its tab’s handshake`)
  }
  const tabOn = (node: string) => (node === nodeOfA ? a.tab : b.tab)

  // Two switches through the balancer: one is served by each node, and each reaches the
  // tab on the other node as well as the one on its own.
  const servedBy = new Set<string>()
  for (const [i, platformId] of [platformIds[1]!, platformIds[2]!].entries()) {
    const res = await http('POST', `/api/switch_platform/${platformId}`, { sid, csrf, body: {}, headers: { 'x-tab-id': 'A' } })
    t.equal(res.status, 200, `switch ${i + 1} served by ${res.backend}`)
    servedBy.add(res.backend!)
    const other = res.backend === nodeOfA ? nodeOfB : nodeOfA
    const event = await tabOn(other).next((m) => m.type === 'platform.switched' && m.seq === i + 1)
    t.match(event, { seq: i + 1, platform: { id: platformId } }, `the tab on ${other} got switch ${i + 1}`)
    await tabOn(res.backend!).next((m) => m.type === 'platform.switched' && m.seq === i + 1)
  }
  t.same([...servedBy].sort(), [nodeOfA, nodeOfB].sort(), 'the switches were served by both nodes')
  const wire = (messages: Message[]) => messages.filter((m) => m.type === 'platform.switched').map((m) => JSON.stringify(m))
  t.same(wire(a.tab.messages), wire(b.tab.messages), 'both tabs got the very same events, in the same order')
  for (const node of cluster.nodes) {
    const state = await (await fetch(`${node.url}/api/session_state`, { headers: { cookie: `sid=${sid}`, ...BROWSER } })).json()
    t.match(state, { platform: { id: platformIds[2] }, seq: 2 }, `${node.name} answers the same session state`)
  }

  // The worker runs the jobs of the cluster (the idle sweep every second).
  const worker = cluster.workers[0]!
  t.equal((await fetch(`${worker.url}/readyz`)).status, 200, 'the worker is ready')
  await until('the worker to sweep', async () => sample(await (await fetch(`${worker.url}/metrics`)).text(), 'tessera_jobs_total', { queue: 'idle-sweep', result: 'completed' }) > 0)
  t.pass('the worker sweeps')

  // A deployment stops tab A's node with SIGTERM: the tab is told 1001 and reconnects
  // through the balancer, which sends it to the node left; it resumes from its last seq.
  const stopping = cluster.nodes.find((n) => n.name === nodeOfA)!
  const [closed, exit] = await Promise.all([a.tab.closed, stopping.stop('SIGTERM')])
  t.equal(closed.code, 1001, 'tab A is closed with 1001 (going away)')
  t.same(exit, { code: 0, signal: null }, `${nodeOfA} exits 0`)
  const lastSeq = Math.max(...a.tab.logged().map((m) => m.seq!))
  const back = await openTab(address, sid, { tabId: 'A', lastSeq }, { origin, headers: BROWSER })
  t.equal(upgrades().at(-1)!.backend, nodeOfB, `tab A is back, on ${nodeOfB}`)
  t.match(back.welcome, { resumed: true, seq: lastSeq })
  const res = await http('POST', `/api/switch_platform/${platformIds[0]}`, { sid, csrf, body: {} })
  t.equal(res.status, 200, 'the API answers through the balancer with one node left')
  t.equal(res.backend, nodeOfB)
  for (const tab of [back.tab, b.tab]) t.match(await tab.next((m) => m.type === 'platform.switched' && m.seq === 3), { platform: { id: platformIds[0] } })
  t.pass('both tabs, now on one node, got the next switch')
})
