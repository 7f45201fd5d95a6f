// Throw-away databases for tests, cloned from a migrated template instead of migrated one by
// one: CREATE DATABASE … TEMPLATE copies the files, which is far cheaper than running every
// migration again. The template is named after a hash of db/migrations, so a change to the
// migrations makes a new one and a run never clones a stale schema. Test files run in
// parallel processes, so the first to need it builds it under an advisory lock on the server;
// the others wait on that lock, then find it. It stays for later runs.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import postgres from 'postgres'
import { migrateDatabase, projectRoot } from '../../src/infra/db.js'

// Another number than src/infra/db.ts's MIGRATION_LOCK, which migrateDatabase takes inside this one.
const TEMPLATE_LOCK = 7_311_999_002

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]))
}

/** A short hash of every file's name and content in db/migrations. */
export function migrationsHash(): string {
  const dir = join(projectRoot(), 'db', 'migrations')
  const hash = createHash('sha256')
  for (const file of files(dir).sort()) {
    hash.update(relative(dir, file)).update('\0').update(readFileSync(file)).update('\0')
  }
  return hash.digest('hex').slice(0, 16)
}

export const templateName = () => `tessera_template_${migrationsHash()}`

function withDatabase(url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(name)}`
  return u.toString()
}

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`

function maintenance(server: string) {
  return postgres(withDatabase(server, 'postgres'), { max: 1, onnotice: () => {}, connect_timeout: 10 })
}

/**
 * Makes sure the migrated template exists on `server`. A template is complete once it is
 * marked IS_TEMPLATE (the last step); one left unmarked by a process that died while building
 * it is dropped and built again. ALLOW_CONNECTIONS false: a session connected to the template
 * would make every CREATE DATABASE from it fail.
 */
async function ensureTemplate(server: string, name: string): Promise<void> {
  const admin = maintenance(server)
  try {
    // A session-level lock: held by admin's one connection, released if this process dies.
    await admin`select pg_advisory_lock(${TEMPLATE_LOCK})`
    const [row] = await admin`select datistemplate from pg_database where datname = ${name}`
    if (row?.datistemplate) return
    if (row) await admin.unsafe(`drop database ${quoted(name)} with (force)`)
    await admin.unsafe(`create database ${quoted(name)}`)
    await migrateDatabase(withDatabase(server, name))
    await admin.unsafe(`alter database ${quoted(name)} with is_template true allow_connections false`)
  } finally {
    await admin.end()
  }
}

// One look per server per process (each tap test file is a process).
const ready = new Map<string, Promise<void>>()

/** Creates the database named in `url` as a copy of the migrated template on its server. */
export async function createTestDatabase(url: string): Promise<void> {
  const server = withDatabase(url, 'postgres')
  const template = templateName()
  let made = ready.get(server)
  if (!made) {
    made = ensureTemplate(server, template)
    ready.set(server, made)
    made.catch(() => ready.delete(server))
  }
  await made
  const name = decodeURIComponent(new URL(url).pathname.slice(1))
  const admin = maintenance(server)
  try {
    await admin.unsafe(`create database ${quoted(name)} template ${quoted(template)}`)
  } finally {
    await admin.end()
  }
}
