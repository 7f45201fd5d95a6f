// A server under test in a process of its own, so that its memory is its own (P4): the
// benchmark starts this file with LoadProcess and calls `start` (Tessera with the
// benchmark's configuration, the bare baseline or the Socket.IO peer), `rss` and `stop`.
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString, writeHeapSnapshot } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildApp, type Tessera } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openResources, type Resources } from '../../src/resources.js'
import { type BaselineNode, startBaselineNode } from './fanout-baseline.js'
import { startSocketIoNode } from './fanout-socketio.js'
import { countWrites, type Meter, startMeter } from './harness.js'
import { serveLoad } from './load-process.js'
import { Profiler } from './profile.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: (string | string[])[] } }
  nodes: number[]
  strings: string[]
}

/** Sums a snapshot's nodes by name (an object's constructor; a string, code and the like by their type). */
function summarizeSnapshot(snap: HeapSnapshot): Record<string, { count: number; bytes: number }> {
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0] as string[]
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number]
  const out: Record<string, { count: number; bytes: number }> = {}
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + typeAt]!]!
    const key = type === 'object' || type === 'closure' ? `${snap.strings[snap.nodes[i + nameAt]!]} (${type})` : `(${type})`
    out[key] ??= { count: 0, bytes: 0 }
    const entry = out[key]
    entry.count++
    entry.bytes += snap.nodes[i + sizeAt]!
  }
  return out
}

let stopServer: (() => Promise<void>) | null = null
let profiler: Profiler | null = null
let meter: Meter | null = null
/** Socket writes so far to PostgreSQL and to Redis, about one per round trip (harness.ts). */
let writes: () => { postgres: number; redis: number } = () => ({ postgres: 0, redis: 0 })

async function startTessera(vars: Record<string, string>): Promise<string> {
  const config = loadConfig(vars)
  const resources: Resources = await openResources(config)
  const tessera: Tessera = await buildApp({ config, database: resources.database, redis: resources.redis, secret: resources.secret })
  writes = countWrites(config.databaseUrl, config.redisUrl)
  await tessera.app.listen({ host: '127.0.0.1', port: 0 })
  stopServer = async () => {
    await tessera.close()
    await resources.close()
  }
  const { port } = tessera.app.server.address() as { port: number }
  return `127.0.0.1:${port}`
}

async function startBaseline(kind: 'baseline' | 'socket.io', redisUrl: string, prefix: string): Promise<string> {
  const node: BaselineNode = kind === 'baseline' ? await startBaselineNode(redisUrl, prefix) : await startSocketIoNode(redisUrl, prefix)
  writes = countWrites('postgres://none:0/none', redisUrl)
  stopServer = () => node.close()
  return node.address
}

serveLoad({
  async start(args: { kind: 'tessera'; vars: Record<string, string> } | { kind: 'baseline' | 'socket.io'; redisUrl: string; prefix: string }) {
    const address = args.kind === 'tessera' ? await startTessera(args.vars) : await startBaseline(args.kind, args.redisUrl, args.prefix)
    return { address, pid: process.pid }
  },
  /** RSS after full collections, twice over so that finalizers' frees count too. */
  async rss() {
    for (let i = 0; i < 2; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 200))
    }
    return process.memoryUsage().rss
  },
  /** Starts measuring this process's CPU and event-loop delay (harness.ts's meter). */
  async meterStart() {
    meter = startMeter()
    return null
  },
  /** A CPU profile of this process from here to profileStop (sockets.ts --profile). */
  async profileStart() {
    profiler = new Profiler()
    await profiler.start()
    return null
  },
  async profileStop(args: { label: string }) {
    const found = (await profiler?.stop(args.label, 20)) ?? null
    profiler = null
    return found
  },
  async writes() {
    return writes()
  },
  async meterStop() {
    const used = meter?.stop() ?? null
    meter = null
    return used
  },
  /** Self size and count of the live heap's objects by constructor (a heap snapshot, summed), to see what a socket holds. */
  async heapByConstructor() {
    gc()
    const file = writeHeapSnapshot(join(tmpdir(), `tessera-bench-${process.pid}-${Date.now()}.heapsnapshot`))
    try {
      return summarizeSnapshot(JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot)
    } finally {
      rmSync(file, { force: true })
    }
  },
  async stop() {
    await stopServer?.()
    stopServer = null
    return null
  },
})
