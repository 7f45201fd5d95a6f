// A server under test in a process of its own, so that its memory is its own (P4): the
// benchmark starts this file with LoadProcess and calls `start` (Tessera with the
// benchmark's configuration, the bare baseline or the Socket.IO peer), `rss` and `stop`.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildApp, type Tessera } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { openResources, type Resources } from '../../src/resources.js'
import { type BaselineNode, startBaselineNode } from './fanout-baseline.js'
import { startSocketIoNode } from './fanout-socketio.js'
import { type Meter, startMeter } from './harness.js'
import { serveLoad } from './load-process.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

let stopServer: (() => Promise<void>) | null = null
let meter: Meter | null = null

async function startTessera(vars: Record<string, string>): Promise<string> {
  const config = loadConfig(vars)
  const resources: Resources = await openResources(config)
  const tessera: Tessera = await buildApp({ config, database: resources.database, redis: resources.redis, secret: resources.secret })
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
  async meterStop() {
    const used = meter?.stop() ?? null
    meter = null
    return used
  },
  async stop() {
    await stopServer?.()
    stopServer = null
    return null
  },
})
