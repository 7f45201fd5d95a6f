// A redis-server of the test's own (free port, its own directory, no persistence), for tests
// that must restart Redis and lose its data: the shared Redis is never flushed or stopped.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectRedis } from '../../src/infra/redis.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

export class PrivateRedis {
  private child: ChildProcess | null = null

  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(t: Teardown): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), await mkdtemp(join(tmpdir(), 'tessera-redis-')))
    t.teardown(async () => {
      await redis.stop()
      await rm(redis.dir, { recursive: true, force: true })
    })
    await redis.run()
    return redis
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`
  }

  private async run() {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    })
    // Up when it answers.
    for (let i = 0; ; i++) {
      try {
        const probe = await connectRedis(this.url, 'tessera-test-probe')
        await probe.quit()
        return
      } catch (err) {
        if (i > 100) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }

  async stop() {
    const child = this.child
    this.child = null
    if (!child || child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  /** Kills the server and starts an empty one on the same port: every key is gone. */
  async restart() {
    await this.stop()
    await this.run()
  }
}
