// What every benchmark shares: its flags, a throw-away Tessera environment (a database
// tessera_bench_<random> and a Redis key prefix, both removed at the end and on Ctrl-C),
// the machine facts a report states, and a meter of the server process's CPU and event loop.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Socket } from 'node:net'
import os from 'node:os'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { buildApp, type Tessera } from '../../src/app.js'
import { type Config, loadConfig } from '../../src/config.js'
import { dropDatabase } from '../../src/infra/db.js'
import { deleteKeysWithPrefix } from '../../src/infra/redis.js'
import { openResources, type Resources } from '../../src/resources.js'
import { progress } from './load-process.js'

// ── flags ──────────────────────────────────────────────────────────────────────

export type Flags = Record<string, number | string | boolean>

/** `--name value`, `--name=value` and bare `--flag` (booleans) over the defaults; `--help` lists them. */
export function parseFlags<T extends Flags>(name: string, defaults: T, help: Record<keyof T, string>, argv = process.argv.slice(2)): T {
  const out: Flags = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') {
      console.log(`usage: tsx scripts/bench/${name}.ts [flags]\n`)
      for (const [k, v] of Object.entries(defaults)) console.log(`  --${k.padEnd(22)} ${help[k as keyof T]} (default: ${v})`)
      process.exit(0)
    }
    const m = /^--([a-z][\w-]*)(?:=(.*))?$/.exec(arg)
    if (!m || !(m[1]! in defaults)) throw new Error(`unknown flag ${arg}; --help lists the flags`)
    const key = m[1]!
    const def = defaults[key]
    if (typeof def === 'boolean') {
      out[key] = m[2] === undefined ? true : m[2] !== 'false'
      continue
    }
    const raw = m[2] ?? argv[++i]
    if (raw === undefined) throw new Error(`--${key} needs a value`)
    if (typeof def === 'number') {
      const n = Number(raw)
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${key} must be a non-negative number, not ${raw}`)
      out[key] = n
    } else out[key] = raw
  }
  return out as T
}

// ── cleanup, also on Ctrl-C ────────────────────────────────────────────────────

const cleanups: (() => Promise<unknown>)[] = []
let cleaning: Promise<void> | undefined
let signalled = false

/** Runs at the end, last registered first (apps before Redis keys before the database). */
export function onCleanup(fn: () => Promise<unknown>) {
  cleanups.push(fn)
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!
      try {
        await fn()
      } catch (err) {
        console.error('cleanup step failed:', err)
      }
    }
  })()
  return cleaning
}

/** Ctrl-C (or SIGTERM) removes what the benchmark made, then exits 130. */
export function installSignalHandlers(name: string) {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // A terminal's Ctrl-C and run.ts's forwarding can both arrive: clean up once.
      if (signalled) return
      signalled = true
      progress(name, `${signal}: removing the throw-away database and Redis keys…`)
      setTimeout(() => process.exit(130), 30_000).unref()
      void cleanup().finally(() => process.exit(130))
    })
  }
}

/** Runs `main`, always cleans up, and hands a summary to run.ts when it started us. */
export async function runBenchmark<T>(name: string, main: () => Promise<T>): Promise<void> {
  installSignalHandlers(name)
  let code = 0
  try {
    const summary = await main()
    if (process.send) process.send({ summary })
  } catch (err) {
    // After Ctrl-C, whatever was running fails as its connections close: that is expected.
    if (!signalled) console.error(`[${name}] failed:`, err)
    code = 1
  } finally {
    await cleanup()
  }
  process.exit(code)
}

// ── the throw-away environment ─────────────────────────────────────────────────

export interface BenchEnv {
  id: string
  databaseUrl: string
  prefix: string
  /** The configuration variables of `config`, for a Tessera in another process (server-process.ts). */
  vars: Record<string, string>
  config: Config
  resources: Resources
  /** A Tessera API node on the shared resources, listening on 127.0.0.1:0; closed at cleanup. */
  node(): Promise<{ tessera: Tessera; address: string }>
}

function benchDatabaseUrl(name: string) {
  const base = new URL(process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres')
  base.pathname = `/${name}`
  return base.toString()
}

export const benchRedisUrl = () => process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Opens PostgreSQL (a new database) and Redis (a new prefix) the way main.ts does.
 * `env` overrides configuration variables. The API rate limit is raised so that a closed
 * loop is not answered 429: the limiter still runs (its Redis round trip is part of the cost).
 */
export async function openBenchEnv(name: string, env: Record<string, string> = {}): Promise<BenchEnv> {
  const id = randomBytes(5).toString('hex')
  const databaseUrl = benchDatabaseUrl(`tessera_bench_${id}`)
  const prefix = `tessera-bench:${id}:`
  // Registered before anything is made, so a Ctrl-C during migration still drops it.
  onCleanup(async () => {
    await dropDatabase(databaseUrl)
    progress(name, `dropped database tessera_bench_${id}`)
  })
  const vars = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: benchRedisUrl(),
    REDIS_KEY_PREFIX: prefix,
    LOG_LEVEL: 'error',
    SESSION_SECRET: randomBytes(36).toString('base64url'),
    ADMIN_PASSWORD: randomBytes(18).toString('base64url'),
    API_RATE_LIMIT: '100000000/min',
    ...env,
  }
  const config = loadConfig(vars)
  progress(name, `throw-away database tessera_bench_${id}, Redis prefix ${prefix}`)
  const resources = await openResources(config)
  onCleanup(async () => {
    const n = await deleteKeysWithPrefix(resources.redis, prefix)
    await resources.close()
    progress(name, `deleted ${n} Redis keys under ${prefix}`)
  })
  return {
    id,
    databaseUrl,
    prefix,
    vars,
    config,
    resources,
    async node() {
      const tessera = await buildApp({ config, database: resources.database, redis: resources.redis, secret: resources.secret })
      onCleanup(() => tessera.close())
      await tessera.app.listen({ host: '127.0.0.1', port: 0 })
      const { port } = tessera.app.server.address() as { port: number }
      return { tessera, address: `127.0.0.1:${port}` }
    },
  }
}

// ── machine facts ──────────────────────────────────────────────────────────────

export interface MachineFacts {
  date: string
  nproc: string
  cpu: string
  memory: string
  node: string
  postgres: string
  redis: string
  commit: string
  loadAtStart: string
}

function sh(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

export const loadAverage = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ')

export async function machineFacts(resources: Resources): Promise<MachineFacts> {
  const [pg] = await resources.database.sql`show server_version`
  const info = await resources.redis.info('server')
  const commit = sh('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown'
  const dirty = (sh('git', ['status', '--porcelain', '--', 'src']) ?? '').length > 0
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: sh('nproc', []) ?? String(os.availableParallelism()),
    cpu: os.cpus()[0]?.model.replace(/\s+/g, ' ') ?? 'unknown',
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    postgres: String(pg?.server_version ?? 'unknown'),
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    commit: dirty ? `${commit} + uncommitted changes in src/` : commit,
    loadAtStart: loadAverage(),
  }
}

/**
 * How many files (sockets included) a process may open: the soft limit of this process,
 * which the server and load-generator processes inherit. Null where /proc does not say.
 */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    return soft === undefined || soft === 'unlimited' ? null : Number(soft)
  } catch {
    return null
  }
}

export function factsLine(f: MachineFacts): string {
  return `${f.date}; \`nproc\` ${f.nproc} (${f.cpu}), ${f.memory}; Node ${f.node}; PostgreSQL ${f.postgres}; Redis ${f.redis}; Tessera ${f.commit}; load average at start ${f.loadAtStart} (1 / 5 / 15 min)`
}

// ── the server process's CPU and event loop over one phase ─────────────────────

export interface Meter {
  /** CPU time of this process (user + system) in ms, and of one core in %, since start. */
  stop(): { cpuMs: number; cpuPercent: number; elapsedMs: number; loopDelayP99Ms: number; loopDelayMaxMs: number }
}

export function startMeter(): Meter {
  const cpu = process.cpuUsage()
  const t0 = performance.now()
  const loop = monitorEventLoopDelay({ resolution: 5 })
  loop.enable()
  return {
    stop() {
      loop.disable()
      const used = process.cpuUsage(cpu)
      const cpuMs = (used.user + used.system) / 1000
      const elapsedMs = performance.now() - t0
      return {
        cpuMs,
        cpuPercent: (100 * cpuMs) / elapsedMs,
        elapsedMs,
        loopDelayP99Ms: loop.percentile(99) / 1e6,
        loopDelayMaxMs: loop.max / 1e6,
      }
    },
  }
}

// ── round trips to PostgreSQL and Redis ────────────────────────────────────────

const writesByPort = new Map<number, number>()

/**
 * Counts socket writes of this process to PostgreSQL's and Redis's ports: about one per
 * round trip (both clients write a pipelined batch at once). Unlike times, these counts
 * do not depend on how busy the machine is, so they compare well between runs.
 */
export function countWrites(databaseUrl: string, redisUrl: string, clusterNodes: string[] = []): () => { postgres: number; redis: number } {
  const proto = Socket.prototype as unknown as { write: (...args: unknown[]) => boolean; benchCounted?: boolean }
  if (!proto.benchCounted) {
    const write = proto.write
    proto.benchCounted = true
    proto.write = function (this: Socket, ...args: unknown[]) {
      const port = this.remotePort
      if (port !== undefined) writesByPort.set(port, (writesByPort.get(port) ?? 0) + 1)
      return write.apply(this, args)
    }
  }
  const pgPort = Number(new URL(databaseUrl).port || 5432)
  // On a Redis Cluster (REDIS_CLUSTER_NODES), the writes to every node.
  const redisPorts = clusterNodes.length > 0 ? clusterNodes.map((n) => Number(n.slice(n.lastIndexOf(':') + 1))) : [Number(new URL(redisUrl).port || 6379)]
  return () => ({ postgres: writesByPort.get(pgPort) ?? 0, redis: redisPorts.reduce((sum, p) => sum + (writesByPort.get(p) ?? 0), 0) })
}

/**
 * Flags that change Tessera's configuration turn a run into an experiment: its figures go
 * to a section of their own, so they never pass for those of Tessera as it ships.
 */
export function experimentOf(flags: { 'db-pool': number; 'redis-autopipelining': boolean }): { suffix: string; note: string } {
  const parts: string[] = []
  if (flags['db-pool'] > 0) parts.push(`DATABASE_POOL_MAX=${flags['db-pool']}`)
  if (flags['redis-autopipelining']) parts.push("ioredis enableAutoPipelining on Tessera's Redis connection")
  return parts.length === 0 ? { suffix: '', note: '' } : { suffix: '-experiment', note: ` — experiment: ${parts.join(', ')}` }
}
