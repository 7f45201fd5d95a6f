// A real Tessera process (`node --import tsx src/main.ts`) on a test app's database and
// Redis prefix, for what only separate OS processes show: roles, several workers, signals.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { projectRoot } from '../../src/infra/db.js'
import { ADMIN_PASSWORD, type TestApp } from './app.js'
import { until } from './wait.js'

export interface TesseraProcess {
  child: ChildProcess
  /** `http://host:port` the process listens on (the API, or a worker's health and metrics). */
  url: string
  output(): string
  /** Sends a signal and resolves with the exit code (or signal) once it is gone. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * The environment of a child process on the test app's database and Redis prefix. A clean
 * one: nothing of the test runner's own (NODE_OPTIONS, TAP_*) leaks in.
 */
export function processEnv(app: TestApp): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: app.databaseUrl,
    REDIS_URL: app.ctx.config.redisUrl,
    ...(app.ctx.config.redisClusterNodes ? { REDIS_CLUSTER_NODES: app.ctx.config.redisClusterNodes.join(',') } : {}),
    REDIS_KEY_PREFIX: app.prefix,
    SESSION_SECRET: app.ctx.secret,
    ADMIN_PASSWORD,
    // One public origin for every node of the test, as a deployment behind one address has.
    PUBLIC_URL: app.ctx.config.publicUrl,
  }
}

/** `nodeArgs` go to node before the script (the soak's `--inspect=127.0.0.1:0`). */
export async function spawnTessera(t: { teardown(fn: () => unknown): void }, app: TestApp, env: Record<string, string>, nodeArgs: string[] = []): Promise<TesseraProcess> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts'], {
    cwd: projectRoot(),
    env: {
      ...processEnv(app),
      HOST: '127.0.0.1',
      PORT: '0',
      WORKER_PORT: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk))
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  const up = await until(
    'the process to be up',
    () => {
      if (child.exitCode !== null) throw new Error(`tessera exited with ${child.exitCode}:\n${output}`)
      const line = output.split('\n').find((l) => l.includes('"Tessera is up"'))
      return line ? (JSON.parse(line) as { address: string }) : null
    },
    60_000,
  )
  return {
    child,
    url: up.address,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}
