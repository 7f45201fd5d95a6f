// A PostgreSQL of the test's own (initdb + pg_ctl in a temp directory, on a free port, trust
// auth), for tests that stop it, kill it or start it again. Never the shared server.
// initdb refuses to run as root, so when the tests run as root (CI does) the cluster is made
// and run by the `postgres` OS user, in a directory that user owns.
import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { freePort } from './private-redis.js'

const run = promisify(execFile)

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Where initdb and pg_ctl live: PG_BIN, else Debian's layout for PostgreSQL 15. */
const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'

export interface PrivatePostgres {
  port: number
  /** postgres://postgres@127.0.0.1:port/postgres (the maintenance database; build() makes its own). */
  url: string
  /** `fast`: clients are disconnected, a clean shutdown. `immediate`: as a crash (recovery at the next start). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  start(): Promise<void>
  running(): boolean
}

async function asOwner(owner: { uid: number; name: string } | null, command: string, args: string[]) {
  const [file, argv] = owner ? ['runuser', ['-u', owner.name, '--', command, ...args]] : [command, args]
  try {
    return await run(file, argv, { timeout: 60_000 })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

/** Makes, starts and at teardown stops and removes a cluster (also when the test fails). */
export async function privatePostgres(t: Teardown): Promise<PrivatePostgres> {
  const port = await freePort()
  // As root, hand the directory to `postgres` (in /tmp, which that user can reach whatever
  // TMPDIR says); as anyone else, run as ourselves.
  const owner = userInfo().uid === 0 ? { uid: Number((await run('id', ['-u', 'postgres'])).stdout.trim()), name: 'postgres' } : null
  const dir = mkdtempSync(join(owner ? '/tmp' : tmpdir(), 'tessera-pg-'))
  const data = join(dir, 'data')
  const log = join(dir, 'server.log')
  if (owner) chownSync(dir, owner.uid, -1)
  let up = false

  const pgCtlStop = ['stop', '-D', data, '-m', 'immediate', '-w']
  // Also when the test process dies before its teardown (an uncaught exception): no server left behind.
  const onExit = () => {
    try {
      if (existsSync(join(data, 'postmaster.pid'))) execFileSync(owner ? 'runuser' : join(BIN, 'pg_ctl'), owner ? ['-u', owner.name, '--', join(BIN, 'pg_ctl'), ...pgCtlStop] : pgCtlStop, { stdio: 'ignore', timeout: 30_000 })
    } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', onExit)
  t.teardown(async () => {
    process.removeListener('exit', onExit)
    if (existsSync(join(data, 'postmaster.pid'))) await asOwner(owner, join(BIN, 'pg_ctl'), pgCtlStop).catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })

  await asOwner(owner, join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  writeFileSync(
    join(dir, 'extra.conf'),
    [
      `port = ${port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${dir}'`,
      // No fsync (nothing here must survive the machine), but every commit is written before it is
      // acknowledged: an immediate stop (a killed server) keeps what it acknowledged, as a real one does.
      'fsync = off',
      'shared_buffers = 16MB',
      'max_connections = 50',
      // A lock held by a prepared transaction outlives its backend (test/ops/postgres-down.test.ts).
      'max_prepared_transactions = 4',
      'logging_collector = off',
      '',
    ].join('\n'),
  )
  if (owner) chownSync(join(dir, 'extra.conf'), owner.uid, -1)
  writeFileSync(join(data, 'postgresql.conf'), `include '${join(dir, 'extra.conf')}'\n`, { flag: 'a' })

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const answers = async () => {
    const probe = postgres(url, { max: 1, connect_timeout: 2, onnotice: () => {} })
    try {
      await probe`select 1`
      return true
    } catch {
      return false
    } finally {
      await probe.end({ timeout: 1 }).catch(() => {})
    }
  }

  const server: PrivatePostgres = {
    port,
    url,
    running: () => up,
    async start() {
      await asOwner(owner, join(BIN, 'pg_ctl'), ['start', '-D', data, '-l', log, '-w', '-t', '60'])
      for (let i = 0; i < 100 && !(await answers()); i++) await new Promise((r) => setTimeout(r, 100))
      up = true
    },
    async stop(mode = 'fast') {
      up = false
      await asOwner(owner, join(BIN, 'pg_ctl'), ['stop', '-D', data, '-m', mode, '-w', '-t', '60'])
    },
  }
  await server.start()
  return server
}
