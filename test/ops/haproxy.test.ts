// deploy/haproxy.cfg itself, run by a real HAProxy (Debian's; CI installs it) in front of
// two API processes and a worker: only the addresses differ from the Docker stack (the
// compose service names become 127.0.0.1 ports). WebSockets upgrade through it, the
// nodes see the client's address and not a forged one, /metrics stays inside, a node
// drained through the runtime API (as deploy/rolling-restart.sh does) gets no new socket,
// and a drained node stopped with SIGTERM moves its tab to the other node.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startCluster } from '../../scripts/cluster/cluster.js'
import { projectRoot } from '../../src/infra/db.js'
import { build, PASSWORD } from '../helpers/app.js'
import { processEnv } from '../helpers/process.js'
import { openTab } from '../helpers/ws.js'
import { sample, until } from '../helpers/wait.js'

const haproxy = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p))
const BROWSER = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', 'accept-language': 'en-GB' }

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

t.test('deploy/haproxy.cfg in front of two API processes', { skip: haproxy ? false : 'haproxy is not installed (apt-get install haproxy; CI does)' }, async (t) => {
  const root = projectRoot()
  const [front, runtime, prometheus] = [await freePort(), await freePort(), await freePort()]
  const publicUrl = `http://localhost:${front}`
  const app = await build(t)
  const { platformIds } = await app.user('ada', { platforms: ['Pixelfed', 'Mastodon'] })
  const cluster = await startCluster({ env: { ...processEnv(app), PUBLIC_URL: publicUrl }, command: ['--import', 'tsx', 'src/main.ts'], cwd: root })
  t.teardown(() => cluster.stop())
  const nodeUrl = (name: string) => cluster.nodes.find((n) => n.name === name)!.url

  // The stack's config with the compose addresses replaced, and nothing else.
  let cfg = readFileSync(join(root, 'deploy/haproxy.cfg'), 'utf8')
  for (const node of cluster.nodes) cfg = cfg.replaceAll(` ${node.name}:3000`, ` ${new URL(node.url).host}`)
  cfg = cfg.replace('bind :8080', `bind 127.0.0.1:${front}`).replace('bind :8405', `bind 127.0.0.1:${prometheus}`)
  cfg = cfg.replace('stats socket ipv4@0.0.0.0:9999', `stats socket ipv4@127.0.0.1:${runtime}`)
  t.notMatch(cfg, / api[12]:3000/, 'every compose address is replaced')
  const dir = mkdtempSync(join(tmpdir(), 'tessera-haproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'haproxy.cfg'), cfg)
  const proxy: ChildProcess = spawn(haproxy!, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  proxy.stdout!.on('data', (c: Buffer) => (log += c))
  proxy.stderr!.on('data', (c: Buffer) => (log += c))
  t.teardown(() => {
    proxy.kill('SIGKILL')
  })

  /** The runtime API, through the same script deploy/rolling-restart.sh uses. */
  const ha = (command: string) => {
    const r = spawnSync(process.execPath, [join(root, 'deploy/haproxy-api.cjs'), `127.0.0.1:${runtime}`, command], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`haproxy-api: ${r.stderr}`)
    return r.stdout
  }
  const status = (backend: string, server: string) =>
    ha('show stat')
      .split('\n')
      .map((l) => l.split(','))
      .find((f) => f[0] === backend && f[1] === server)?.[17]
  await until('HAProxy to see both nodes up', () => status('api', 'api1') === 'UP' && status('api', 'api2') === 'UP', 30_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${log}`)
  })
  t.pass('both nodes are UP by their /readyz')

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${front}${path}`, { headers: { ...BROWSER, ...headers } })
  for (const path of ['/', '/admin']) {
    const res = await get(path)
    t.equal(res.status, 200, `${path} is served`)
    t.match(res.headers.get('content-type'), /text\/html/)
  }
  t.equal((await get('/readyz')).status, 200)
  t.equal((await get('/metrics')).status, 404, '/metrics is not served on the public port')
  t.match(await (await fetch(`http://127.0.0.1:${prometheus}/metrics`)).text(), /haproxy_server_status/, 'HAProxy’s own metrics on the internal port')

  const login = await fetch(`http://127.0.0.1:${front}/api/auth/login`, {
    method: 'POST',
    headers: { ...BROWSER, origin: publicUrl, 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' },
    body: JSON.stringify({ username: 'ada', password: PASSWORD }),
  })
  t.equal(login.status, 200, 'signed in through HAProxy')
  const sid = /sid=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!
  const { csrfToken, session } = (await login.json()) as { csrfToken: string; session: { id: string } }
  const [attempt] = await app.ctx.database.sql`select host(ip) as ip from login_attempts where session_id = ${session.id}`
  t.equal(attempt?.ip, '127.0.0.1', 'the node saw the client’s address from HAProxy, not the forged X-Forwarded-For')

  const address = `127.0.0.1:${front}`
  const opts = { origin: publicUrl, headers: BROWSER }
  const socketsOf = async (name: string) => sample(await (await fetch(`${nodeUrl(name)}/metrics`)).text(), 'tessera_ws_sockets')
  const a = await openTab(address, sid, { tabId: 'A' }, opts)
  const nodeOfA = await until('tab A’s socket on a node', async () => ((await socketsOf('api1')) === 1 ? 'api1' : (await socketsOf('api2')) === 1 ? 'api2' : null))
  const other = nodeOfA === 'api1' ? 'api2' : 'api1'
  const b = await openTab(address, sid, { tabId: 'B' }, opts)
  await until('tab B’s socket on the other node', async () => (await socketsOf(other)) === 1)
  t.pass(`leastconn: tab A is on ${nodeOfA}, tab B on ${other}`)
  const res = await fetch(`http://127.0.0.1:${front}/api/switch_platform/${platformIds[1]}`, {
    method: 'POST',
    headers: { ...BROWSER, origin: publicUrl, cookie: `sid=${sid}`, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
    body: '{}',
  })
  t.equal(res.status, 200)
  for (const tab of [a.tab, b.tab]) t.match(await tab.type('platform.switched'), { seq: 1, platform: { id: platformIds[1] } })
  t.pass('a switch through HAProxy reached the tabs on both nodes')

  // A deploy drains tab A's node through the runtime API (deploy/rolling-restart.sh).
  ha(`set server api/${nodeOfA} state drain`)
  ha(`set server api_live/${nodeOfA} state drain`)
  t.equal(status('api', nodeOfA), 'DRAIN', `${nodeOfA} is draining`)
  await openTab(address, sid, { tabId: 'C' }, opts)
  await openTab(address, sid, { tabId: 'D' }, opts)
  await until('the new tabs on the node not drained', async () => (await socketsOf(other)) === 3)
  t.equal(await socketsOf(nodeOfA), 1, 'the drained node got no new socket, and kept tab A')
  for (let i = 0; i < 6; i++) t.equal((await get('/api/session_state', { cookie: `sid=${sid}` })).status, 200)
  t.pass('requests keep being answered')

  // Then stops it with SIGTERM: tab A is told 1001 and comes back on the other node.
  const stopping = cluster.nodes.find((n) => n.name === nodeOfA)!
  const [closed, exit] = await Promise.all([a.tab.closed, stopping.stop('SIGTERM')])
  t.equal(closed.code, 1001, 'tab A is closed with 1001')
  t.same(exit, { code: 0, signal: null }, `${nodeOfA} exits 0`)
  const back = await openTab(address, sid, { tabId: 'A', lastSeq: 1 }, opts)
  t.match(back.welcome, { resumed: true, seq: 1 }, 'tab A resumes')
  await until('tab A back on the other node', async () => (await socketsOf(other)) === 4)
  t.pass(`all four tabs are on ${other}`)
  for (let i = 0; i < 6; i++) t.equal((await get('/api/session_state', { cookie: `sid=${sid}` })).status, 200)
  t.pass('requests keep being answered with one node stopped')
})
