// Opening what a process needs, in order: the database (created and migrated when missing),
// Redis, the session secret, the Settings record and the first admin.
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { appSecrets } from '../db/schema.js'
import { createUser } from './auth/users.js'
import { users } from '../db/schema.js'
import type { Config } from './config.js'
import { type Database, ensureDatabase, explained, migrateDatabase, openDatabase, requireDatabase } from './infra/db.js'
import { connectRedis, redisTarget } from './infra/redis.js'
import { eq, sql } from 'drizzle-orm'

export interface Resources {
  database: Database
  redis: Redis
  secret: string
  /** The generated first-admin password, when this start created the admin. */
  /** The first admin's generated password, to print once; null when none was generated. */
  bootstrap: { username: string; password: string } | null
  /** This start created the first admin: the database was new. */
  adminCreated: boolean
  close(): Promise<void>
}

/** `prepare: false` (the operator CLI): the database must exist and be set up already. */
export async function openResources(config: Config, opts: { prepare?: boolean } = {}): Promise<Resources> {
  if (opts.prepare === false) {
    await requireDatabase(config.databaseUrl)
  } else {
    await ensureDatabase(config.databaseUrl)
    await migrateDatabase(config.databaseUrl)
  }
  const database = await openDatabase(config.databaseUrl, config.databasePoolMax)
  let redis: Redis
  try {
    redis = await connectRedis(redisTarget(config))
  } catch (err) {
    await database.close()
    throw err
  }
  const url = config.databaseUrl
  let secret: string
  let created: Awaited<ReturnType<typeof bootstrapAdmin>>
  try {
    secret = config.sessionSecret ?? (await explained(url, () => storedSecret(database)))
    created = await explained(url, () => bootstrapAdmin(database, config))
  } catch (err) {
    await Promise.all([database.close(), redis.quit().catch(() => redis.disconnect())])
    throw err
  }
  let closing: Promise<void> | undefined
  return {
    database,
    redis,
    secret,
    bootstrap: created?.generated ? { username: created.username, password: created.password } : null,
    adminCreated: created !== null,
    close: () => {
      closing ??= Promise.all([database.close(), redis.quit().catch(() => redis.disconnect())]).then(() => {})
      return closing
    },
  }
}

/** Development only: a secret generated once and kept in PostgreSQL, so every node shares it. */
async function storedSecret(database: Database): Promise<string> {
  await database.db
    .insert(appSecrets)
    .values({ name: 'session_secret', value: randomBytes(48).toString('base64url') })
    .onConflictDoNothing()
  const [row] = await database.db.select().from(appSecrets).where(eq(appSecrets.name, 'session_secret'))
  return row!.value
}

/** Creates the first admin when the database has none; null when it had one. */
async function bootstrapAdmin(database: Database, config: Config) {
  const [row] = await database.db.select({ n: sql<number>`count(*)::int` }).from(users).where(eq(users.role, 'admin'))
  if ((row?.n ?? 0) > 0) return null
  const username = config.bootstrapAdmin.username
  const password = config.bootstrapAdmin.password ?? randomBytes(12).toString('base64url')
  try {
    await createUser(database.db, { username, password, role: 'admin', email: null })
  } catch (err) {
    if ((err as { code?: string }).code === 'USERNAME_TAKEN') return null // another node won the race
    throw err
  }
  return { username, password, generated: !config.bootstrapAdmin.password }
}
