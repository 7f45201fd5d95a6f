// `npm run test:cluster`: the realtime, sessions, jobs and admin tests on a private Redis
// Cluster (3 primaries, 3 replicas: test/helpers/private-cluster.ts), plus the cluster's own
// tests (test/cluster/*.cluster.ts: a primary killed and its replica promoted under live tabs).
// The apps the tests build run on the cluster (TEST_REDIS_CLUSTER_NODES, test/helpers/app.ts).
// A test that needs a Redis of its own (one it stops, restarts or reaches through a proxy,
// a connection it kills by address) is about one server and is left to `npm test`.
//
//   npm run test:cluster                       every file
//   npm run test:cluster -- test/realtime/fanout.test.ts   just these
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { privateCluster } from '../test/helpers/private-cluster.js'

const FOLDERS = ['test/realtime', 'test/sessions', 'test/jobs', 'test/admin']
/** What marks a test as one about a single Redis server. */
const SINGLE_SERVER = /testRedisUrl\(|privateRedis\(|subscriberAddress\(/

function files(): { run: string[]; left: string[] } {
  const run: string[] = []
  const left: string[] = []
  for (const folder of FOLDERS) {
    for (const name of readdirSync(folder).sort()) {
      if (!name.endsWith('.test.ts')) continue
      const file = join(folder, name)
      ;(SINGLE_SERVER.test(readFileSync(file, 'utf8')) ? left : run).push(file)
    }
  }
  const own = readdirSync('test/cluster')
    .filter((n) => n.endsWith('.cluster.ts'))
    .map((n) => join('test/cluster', n))
  return { run: [...run, ...own], left }
}

const chosen = process.argv.slice(2)
const { run, left } = files()
const targets = chosen.length > 0 ? chosen : run
if (chosen.length === 0) process.stderr.write(`test:cluster: ${run.length} files; left to npm test (they need one Redis server): ${left.join(', ')}\n`)

const cluster = await privateCluster()
process.stderr.write(`test:cluster: a private Redis Cluster on ${cluster.seeds.join(',')}\n`)
const code = await new Promise<number>((resolve) => {
  const tap = spawn('npx', ['tap', '--jobs=1', '--reporter=tap', ...targets], {
    stdio: 'inherit',
    env: { ...process.env, TEST_REDIS_CLUSTER_NODES: cluster.seeds.join(',') },
  })
  tap.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)))
})
await cluster.stop()
process.exit(code)
