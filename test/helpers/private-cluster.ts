// A Redis Cluster of the test's own: 3 primaries and 3 replicas on free ports, each with its
// own directory and no persistence, made with `redis-cli --cluster create`. Never the shared
// Redis. Used by `npm run test:cluster` (scripts/test-cluster.ts) and the failover test.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort } from './private-redis.js'

const run = promisify(execFile)

interface Teardown {
  teardown(fn: () => unknown): void
}

export interface ClusterNodeInfo {
  port: number
  role: 'master' | 'slave'
  /** The node id (CLUSTER MYID). */
  id: string
}

export interface PrivateCluster {
  /** `127.0.0.1:port` of every node: REDIS_CLUSTER_NODES. */
  seeds: string[]
  ports: number[]
  /** Every node's role as the cluster sees it now (from a live node's CLUSTER NODES). */
  nodes(): Promise<ClusterNodeInfo[]>
  /** Kills one node (SIGKILL): its replica takes over once the others judge it failed. */
  kill(port: number): Promise<void>
  /** Waits until the cluster answers `cluster_state:ok` on every live node, and every slot has a live primary. */
  healthy(timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

/** `cluster-node-timeout`: how long a silent primary takes to be judged failed (ms). */
const NODE_TIMEOUT_MS = 1000

async function isFree(port: number): Promise<boolean> {
  const server = createServer()
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => resolve(true))
  })
  if (ok) await new Promise((resolve) => server.close(resolve))
  return ok
}

async function probe<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T | undefined> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } catch {
    return undefined
  } finally {
    r.disconnect()
  }
}

/** Starts the 6 nodes and joins them; `t` (a tap test, or anything with teardown) stops them. */
export async function privateCluster(t?: Teardown): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cluster-'))
  const children = new Map<number, ChildProcess>()
  const ports: number[] = []
  const running = (p: number) => children.get(p)?.exitCode === null && children.get(p)?.signalCode === null
  const live = () => ports.filter(running)

  // Each node also listens on port + 10000 (the cluster bus); a node that does not come up
  // (one of its ports was taken meanwhile) is replaced by one on other ports.
  while (ports.length < 6) {
    const port = await freePort()
    if (ports.includes(port) || port + 10000 > 65535 || !(await isFree(port + 10000))) continue
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', `dump-${port}.rdb`]
    args.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', String(NODE_TIMEOUT_MS))
    args.push('--save', '', '--appendonly', 'no')
    const child = spawn('redis-server', args, { stdio: 'ignore' })
    children.set(port, child)
    let up = false
    for (let i = 0; i < 100 && running(port) && !up; i++) {
      up = (await probe(port, (r) => r.ping())) === 'PONG'
      if (!up) await sleep(50)
    }
    if (up) ports.push(port)
    else {
      child.kill('SIGKILL')
      children.delete(port)
    }
  }

  const cluster: PrivateCluster = {
    seeds: ports.map((p) => `127.0.0.1:${p}`),
    ports,
    async nodes() {
      for (const port of live()) {
        const text = await probe(port, (r) => r.call('CLUSTER', 'NODES') as Promise<string>)
        if (!text) continue
        return text
          .trim()
          .split('\n')
          .map((line) => {
            const [id, address, flags] = line.split(' ')
            return { id: id!, port: Number(address!.split('@')[0]!.split(':')[1]), role: flags!.includes('master') ? 'master' : 'slave', failed: flags!.includes('fail') }
          })
          .filter((n) => !n.failed)
          .map(({ id, port, role }) => ({ id, port, role: role as 'master' | 'slave' }))
      }
      return []
    },
    async kill(port) {
      const child = children.get(port)
      if (!child || !running(port)) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    },
    async healthy(timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs
      for (;;) {
        const states = await Promise.all(live().map((p) => probe(p, (r) => r.call('CLUSTER', 'INFO') as Promise<string>)))
        const masters = (await cluster.nodes()).filter((n) => n.role === 'master' && live().includes(n.port))
        if (states.every((s) => s?.includes('cluster_state:ok')) && masters.length === 3) return
        if (Date.now() > until) throw new Error(`the private Redis Cluster is not healthy: ${states.map((s) => s?.match(/cluster_state:\w+/)?.[0]).join(', ')}`)
        await sleep(100)
      }
    },
    async stop() {
      await Promise.all(ports.map((p) => cluster.kill(p)))
      rmSync(dir, { recursive: true, force: true })
    },
  }

  try {
    await run('redis-cli', ['--cluster', 'create', ...cluster.seeds, '--cluster-replicas', '1', '--cluster-yes'], { timeout: 60_000 })
    await cluster.healthy(60_000)
    // Every replica has finished its first sync, so that a failover finds one ready.
    const until = Date.now() + 30_000
    for (;;) {
      const links = await Promise.all(ports.map((p) => probe(p, (r) => r.info('replication'))))
      const replicas = links.filter((l) => l?.includes('role:slave'))
      if (replicas.length === 3 && replicas.every((l) => l!.includes('master_link_status:up'))) break
      if (Date.now() > until) throw new Error('the replicas of the private Redis Cluster did not sync')
      await sleep(100)
    }
  } catch (err) {
    await cluster.stop()
    throw err
  }
  t?.teardown(() => cluster.stop())
  return cluster
}
