// A redis-server of the test's own, on a free port with its own directory, for tests that
// stop, restart (empty) or configure Redis differently (a password). Never the shared one.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

interface Teardown {
  teardown(fn: () => unknown): void
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export interface PrivateRedis {
  port: number
  /** redis://[:password@]127.0.0.1:port */
  url: string
  stop(): Promise<void>
  start(): Promise<void>
  /** Kills the server and starts an empty one on the same port: every key is gone. */
  restart(): Promise<void>
}

/** Starts redis-server (empty, no persistence); stopped and its directory removed at teardown. */
export async function privateRedis(t: Teardown, opts: { password?: string } = {}): Promise<PrivateRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'))
  let child: ChildProcess | null = null
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']
  if (opts.password) args.push('--requirepass', opts.password)

  const answers = async () => {
    const probe = new Redis({ port, host: '127.0.0.1', password: opts.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      return (await probe.ping()) === 'PONG'
    } catch {
      return false
    } finally {
      probe.disconnect()
    }
  }

  const redis: PrivateRedis = {
    port,
    url: opts.password ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', args, { stdio: 'ignore' })
      for (let i = 0; i < 100 && !(await answers()); i++) await sleep(50)
    },
    async stop() {
      const running = child
      if (!running || running.exitCode !== null) return
      child = null
      const exited = new Promise((resolve) => running.once('exit', resolve))
      running.kill('SIGKILL')
      await exited
    },
    async restart() {
      await redis.stop()
      await redis.start()
    },
  }
  await redis.start()
  t.teardown(async () => {
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return redis
}
