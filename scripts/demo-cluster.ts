// `npm run demo:cluster`: the deployment's shape without Docker. Two API nodes and a
// worker as separate processes (the built server, dist/src/main.js) behind a small Node
// balancer (scripts/cluster/balancer.ts: round robin, no sticky sessions, WebSockets
// tunnelled), on the PostgreSQL and Redis that `npm start` uses. It prints the one URL to
// open: sign in, open a second tab, and the two tabs are served by different nodes and
// stay in step. Ctrl-C stops everything (SIGTERM to each process, as a deployment does).
//
//   PORT (default 3000) and HOST (default 127.0.0.1): where the balancer listens;
//   VERBOSE=1: every log line of every process, not only warnings and what they print.
import { fileURLToPath } from 'node:url'
import { startCluster } from './cluster/cluster.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const verbose = process.env.VERBOSE === '1'

/** Log lines at warn or above, and everything that is not a JSON log line (the first admin, demo accounts). */
function shown(line: string): boolean {
  if (line.trim() === '' || line.includes('Tessera is serving')) return false
  if (!line.startsWith('{')) return true
  if (verbose) return true
  try {
    return ((JSON.parse(line) as { level?: number }).level ?? 0) >= 40
  } catch {
    return true
  }
}

const { PORT, HOST, ...env } = process.env
let cluster: Awaited<ReturnType<typeof startCluster>>
try {
  cluster = await startCluster({
    env,
    command: ['dist/src/main.js'],
    cwd: root,
    host: HOST ?? '127.0.0.1',
    port: Number(PORT ?? 3000),
    onLine: (name, line) => {
      if (shown(line)) process.stdout.write(`[${name}] ${line}\n`)
    },
  })
} catch (err) {
  console.error(`demo:cluster: ${(err as Error).message}`)
  process.exit(1)
}

const pad = (s: string) => s.padEnd(8)
process.stdout.write(
  [
    '',
    '  Tessera, two API nodes and a worker behind one balancer (no sticky sessions):',
    ...cluster.nodes.map((n) => `    ${pad(n.name)}${n.url}  ROLE=api`),
    ...cluster.workers.map((w) => `    ${pad(w.name)}${w.url}  ROLE=worker (/healthz, /readyz, /metrics)`),
    '',
    `  Open ${cluster.url}  (the dashboard: ${new URL('/admin', cluster.url)}); Ctrl-C stops them all.`,
    '',
    '',
  ].join('\n'),
)

let stopping = false
const stop = async () => {
  if (stopping) return
  stopping = true
  process.stdout.write('\n  Stopping (SIGTERM to every process)…\n')
  await cluster.stop()
  process.exit(0)
}
process.on('SIGINT', () => void stop())
process.on('SIGTERM', () => void stop())
for (const p of [...cluster.nodes, ...cluster.workers]) {
  p.child.on('exit', (code, signal) => {
    if (!stopping) process.stdout.write(`[${p.name}] exited (${code ?? signal}); the others keep serving\n`)
  })
}
