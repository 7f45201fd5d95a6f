// The deployment's shape as processes on one machine: two API nodes (ROLE=api) and a
// worker (ROLE=worker) behind one balancer (./balancer.ts), every node on the same
// PostgreSQL and Redis, all of them told the balancer's URL as PUBLIC_URL. Used by
// `npm run demo:cluster` (scripts/demo-cluster.ts) and test/system/cluster.test.ts.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { Balancer } from './balancer.js'

export interface ClusterProcess {
  name: string
  role: 'api' | 'worker'
  child: ChildProcess
  /** Where it listens: the API, or a worker's /healthz, /readyz and /metrics. */
  url: string
  output(): string
  /** Sends the signal (default SIGTERM) and resolves once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface ClusterOptions {
  /** The environment of every process (DATABASE_URL, REDIS_URL, SESSION_SECRET, …). */
  env: Record<string, string | undefined>
  /** How to run a Tessera process (LOG_LEVEL is info: its "Tessera is up" line says where it listens): `[process.execPath, ...command]`, e.g. ['dist/src/main.js']. */
  command: string[]
  cwd: string
  /** The balancer's address (default 127.0.0.1, a free port). */
  host?: string
  port?: number
  /** API nodes (default 2) and workers (default 1). */
  apiNodes?: number
  workers?: number
  /** Each line a process prints, as it comes. */
  onLine?: (name: string, line: string) => void
  /** How long a process may take to say it is up (default 60 s). */
  startTimeoutMs?: number
}

export interface Cluster {
  /** The one URL to open: the balancer's. */
  url: string
  balancer: Balancer
  nodes: ClusterProcess[]
  workers: ClusterProcess[]
  /** Stops every process (SIGTERM, as a deployment does), then the balancer. */
  stop(): Promise<void>
}

function startProcess(name: string, role: 'api' | 'worker', options: ClusterOptions, env: Record<string, string | undefined>): Promise<ClusterProcess> {
  const child = spawn(process.execPath, options.command, {
    cwd: options.cwd,
    env: { ...options.env, ...env, ROLE: role, HOST: '127.0.0.1', PORT: '0', WORKER_PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  let partial = ''
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  return new Promise((resolve, reject) => {
    let up = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} did not come up within ${options.startTimeoutMs ?? 60_000} ms:\n${output}`))
    }, options.startTimeoutMs ?? 60_000)
    const onData = (chunk: Buffer) => {
      output += chunk
      partial += chunk
      const lines = partial.split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        options.onLine?.(name, line)
        if (!up && line.includes('"Tessera is up"')) {
          up = true
          clearTimeout(timer)
          const { address } = JSON.parse(line) as { address: string }
          resolve({
            name,
            role,
            child,
            url: address,
            output: () => output,
            async stop(signal = 'SIGTERM') {
              if (child.exitCode === null && child.signalCode === null) child.kill(signal)
              // A process gives itself 10 s to shut down (src/main.ts); past 15 s it is hung.
              const hung = setTimeout(() => child.kill('SIGKILL'), 15_000)
              const result = await exited
              clearTimeout(hung)
              return result
            },
          })
        }
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    void exited.then(({ code, signal }) => {
      if (up) return
      clearTimeout(timer)
      reject(new Error(`${name} exited (${code ?? signal}) before it was up:\n${output}`))
    })
  })
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const balancer = await Balancer.start({ host: options.host, port: options.port })
  const publicUrl = options.env.PUBLIC_URL ?? balancer.url.replace('//127.0.0.1:', '//localhost:')
  // The balancer is the nodes' only client: they take the client's address from it.
  const env = { PUBLIC_URL: publicUrl, TRUST_PROXY: options.env.TRUST_PROXY ?? 'loopback' }
  const started: ClusterProcess[] = []
  const stopAll = async () => {
    await Promise.all(started.map((p) => p.stop()))
    await balancer.close()
  }
  try {
    const count = options.apiNodes ?? 2
    const workers = options.workers ?? 1
    const launch = async (name: string, role: 'api' | 'worker') => {
      const p = await startProcess(name, role, options, env)
      started.push(p)
      return p
    }
    // The first node alone: it creates and migrates the database and the first admin, so
    // what it prints comes first. The others start side by side.
    const first = await launch('api1', 'api')
    const rest = await Promise.all([
      ...Array.from({ length: count - 1 }, (_, i) => launch(`api${i + 2}`, 'api')),
      ...Array.from({ length: workers }, (_, i) => launch(workers === 1 ? 'worker' : `worker${i + 1}`, 'worker')),
    ])
    const nodes = [first, ...rest.filter((p) => p.role === 'api')]
    for (const node of nodes) await balancer.add(node.name, node.url)
    return { url: publicUrl, balancer, nodes, workers: rest.filter((p) => p.role === 'worker'), stop: stopAll }
  } catch (err) {
    await stopAll()
    throw err
  }
}
