// PostgreSQL: the pool (postgres.js), the drizzle handle, creating and migrating the database.
import { randomBytes } from 'node:crypto'
import { userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import type { SQL } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import postgres from 'postgres'
import * as schema from '../../db/schema.js'
import { DependencyError } from './dependency-error.js'

export type Db = PostgresJsDatabase<typeof schema>
/** A drizzle transaction: what `db.transaction` hands its callback. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
/** The drizzle handle or one of its transactions: anything that runs a drizzle query. */
export type Queryable = Db | Tx
export type Pool = postgres.Sql

const dialect = new PgDialect()

/**
 * Runs a drizzle `sql` statement (a CTE the query builder cannot write) prepared, typed as
 * `Row`. `execute()` runs it unprepared, and postgres.js then describes every unprepared
 * statement before running it: a round trip more than a prepared one, which it describes once
 * per connection. For statements on a hot path (a platform switch, ending sessions, taking a lock).
 */
export async function executePrepared<Row>(db: Queryable, statement: SQL, name: string): Promise<Row[]> {
  return db._.session.prepareQuery<{ execute: Row[]; all: Row[]; values: unknown }>(dialect.sqlToQuery(statement), undefined, name, false).execute()
}

export interface PoolUsage {
  /** Connections of this pool open to PostgreSQL. */
  open: number
  /** Of those, running a query or held by a transaction. */
  busy: number
}

export interface Database {
  sql: Pool
  db: Db
  /** This pool's connections, from the driver's own statistics. */
  poolUsage(): PoolUsage
  close(): Promise<void>
}

const MIGRATION_LOCK = 7_311_999_001

/** The repository root, whether running from src/ (tsx) or dist/src/ (built). */
export function projectRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url)) // …/src/infra or …/dist/src/infra
  const root = join(here, '..', '..')
  return root.endsWith('dist') ? join(root, '..') : root
}

function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres'
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url)
  u.pathname = `/${encodeURIComponent(name)}`
  return u.toString()
}

function quiet() {
  return { onnotice: () => {}, connect_timeout: 5 }
}

const HOW_TO_START = 'docker compose -f compose.dev.yaml up -d postgres (or start your local PostgreSQL, e.g. pg_ctlcluster 15 main start)'
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN'])

/** The role start-up connects as: the URL's user, else (like libpq) the OS user. */
function roleOf(url: string): string {
  const name = decodeURIComponent(new URL(url).username)
  if (name) return name
  try {
    return userInfo().username
  } catch {
    return 'postgres'
  }
}

/** What to do about an error PostgreSQL answered with, by its SQLSTATE. */
function hintFor(code: string | undefined, url: string): string {
  const role = roleOf(url)
  const database = databaseName(url)
  switch (code) {
    case '28000': // invalid authorization: most often "role … does not exist"
      return `Create the role (createuser --createdb ${role}) or set DATABASE_URL to a role that exists, e.g. postgres://postgres@127.0.0.1:5432/${database}`
    case '28P01':
      return 'Check the user name and password in DATABASE_URL'
    case '3D000':
      return `Create the database (createdb ${database}) or set DATABASE_URL to one that exists`
    case '42501':
      return `Let the role create databases (alter role ${role} createdb) or create it yourself (createdb -O ${role} ${database})`
    default:
      return 'Check DATABASE_URL and the PostgreSQL server log'
  }
}

/**
 * Runs a start-up step against PostgreSQL; any failure of PostgreSQL becomes one line
 * (a DependencyError) naming the URL and what to do, never a stack trace.
 */
export async function explained<T>(url: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (thrown) {
    // drizzle wraps the driver's error as `cause`.
    const err = ((thrown as { cause?: unknown }).cause ?? thrown) as { code?: string; message?: string; name?: string }
    if (err.code && UNREACHABLE.has(err.code)) throw DependencyError.unreachable('PostgreSQL', url, HOW_TO_START)
    const fromPostgres = err.name === 'PostgresError' || (typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code))
    if (fromPostgres || /password|SASL|SSL|connection/i.test(err.message ?? '')) {
      throw DependencyError.refused('PostgreSQL', url, err.message ?? String(err), hintFor(err.code, url))
    }
    throw thrown
  }
}

/**
 * For the operator CLI, which never creates or migrates a database: refuses a database that
 * does not exist (a mistyped DATABASE_URL) or that the service has not set up yet.
 */
export async function requireDatabase(url: string): Promise<void> {
  const name = databaseName(url)
  const admin = postgres(withDatabase(url, 'postgres'), { max: 1, ...quiet() })
  try {
    const exists = await explained(url, async () => (await admin`select 1 from pg_database where datname = ${name}`).length > 0)
    if (!exists) {
      throw DependencyError.missing('PostgreSQL', url, `the database "${name}" does not exist. Check DATABASE_URL; the CLI never creates a database (the service does, on its first start).`)
    }
  } finally {
    await admin.end()
  }
  const sql = postgres(url, { max: 1, ...quiet() })
  try {
    const [row] = await explained(url, () => sql`select to_regclass('public.users') is not null as ready`)
    if (!row?.ready) {
      throw DependencyError.missing('PostgreSQL', url, `the database "${name}" has no Tessera tables. Start the service once to set it up; the CLI never migrates a database.`)
    }
  } finally {
    await sql.end()
  }
}

/** Creates the database named in `url` when it does not exist yet. */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url)
  const admin = postgres(withDatabase(url, 'postgres'), { max: 1, ...quiet() })
  try {
    return await explained(url, async () => {
      const rows = await admin`select 1 from pg_database where datname = ${name}`
      if (rows.length > 0) return false
      await admin.unsafe(`create database "${name.replaceAll('"', '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err // another node created it first
      })
      return true
    })
  } finally {
    await admin.end()
  }
}

export async function dropDatabase(url: string): Promise<void> {
  const name = databaseName(url)
  const admin = postgres(withDatabase(url, 'postgres'), { max: 1, ...quiet() })
  try {
    await admin.unsafe(`drop database if exists "${name.replaceAll('"', '""')}" with (force)`)
  } finally {
    await admin.end()
  }
}

/** Applies db/migrations; an advisory lock keeps two starting nodes from racing. */
export async function migrateDatabase(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, ...quiet() })
  try {
    await explained(url, async () => {
      await sql`select pg_advisory_lock(${MIGRATION_LOCK})`
      await migrate(drizzle(sql), { migrationsFolder: join(projectRoot(), 'db', 'migrations') })
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK})`
    })
  } finally {
    await sql.end()
  }
}

/**
 * drizzle makes postgres.js pass timestamps through as strings (it maps them itself);
 * raw queries here want Date in and out, and drizzle's mapping accepts Dates too.
 * JSON stays as drizzle set it: raw queries send JSON as text with a ::jsonb cast.
 */
function withDateTypes<T>(sql: Pool, make: () => T): T {
  const types = [1184, 1114] as const
  const { options } = sql
  const saved = types.map((t) => [options.parsers[t], options.serializers[t]] as const)
  const made = make()
  const restore = (table: Record<number, (value: unknown) => unknown>, type: number, was: ((value: unknown) => unknown) | undefined) => {
    if (was) table[type] = was
    else delete table[type]
  }
  types.forEach((t, i) => {
    restore(options.parsers, t, saved[i]![0])
    restore(options.serializers, t, saved[i]![1])
  })
  return made
}

/**
 * Seconds a connection waits before it reconnects after an error. postgres.js's own backoff
 * grows to 20 s: with PostgreSQL restarted, every query would wait up to that long before it
 * failed (a request hanging instead of a 503) and the pool would come back that late.
 */
export const reconnectDelaySeconds = (retries: number) => Math.min(0.05 * 2 ** retries, 0.5)

/**
 * Backstops, set on every connection of the pool: no wait for a lock, and no transaction
 * left idle (its connection held while the process waits on something else), outlasts
 * these. A pool whose connections all wait on each other would otherwise hang for good
 * (issue 12); the request in such a wait fails with 503 instead, and its connection is freed.
 * Far above what a real wait takes: the longest are logins of one user queueing for its
 * login lock (50 at once take a second or two).
 */
export const LOCK_TIMEOUT_MS = 20_000
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000

export async function openDatabase(url: string, poolMax: number): Promise<Database> {
  const applicationName = `tessera-${randomBytes(6).toString('hex')}`
  const sql = postgres(url, {
    max: poolMax,
    ...quiet(),
    idle_timeout: 60,
    backoff: reconnectDelaySeconds,
    connection: {
      application_name: applicationName,
      lock_timeout: LOCK_TIMEOUT_MS,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
    },
  })
  await explained(url, () => sql`select 1`)
  const db = withDateTypes(sql, () => drizzle(sql, { schema }))
  let closing: Promise<void> | undefined
  return {
    sql,
    db,
    poolUsage: () => {
      const { connections, idle } = sql.stats
      return { open: connections, busy: connections - idle }
    },
    close: () => {
      closing ??= sql.end({ timeout: 5 })
      return closing
    },
  }
}
