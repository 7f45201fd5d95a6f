// Builds a real Tessera against real PostgreSQL and Redis for one test: a throw-away
// database and a unique Redis key prefix, both removed when the test ends.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { type AppDeps, buildApp, type Tessera } from '../../src/app.js'
import { createUser } from '../../src/auth/users.js'
import { loadConfig } from '../../src/config.js'
import { type WorkerOptions, Workers } from '../../src/jobs/workers.js'
import { dropDatabase } from '../../src/infra/db.js'
import { deleteKeysWithPrefix } from '../../src/infra/redis.js'
import { openResources, type Resources } from '../../src/resources.js'
import { createTestDatabase } from './database.js'
import type { TcpProxy } from './tcp-proxy.js'

export const ADMIN_PASSWORD = 'admin-password-1'
export const PASSWORD = 'correct-horse-battery'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A database `name` on the shared test server, or on `server` (a URL of another one). */
export function testDatabaseUrl(name: string, server?: string) {
  const base = new URL(server ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres')
  base.pathname = `/${name}`
  return base.toString()
}

export const testRedisUrl = () => process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** `npm run test:cluster` (scripts/test-cluster.ts): the seeds of its private Redis Cluster, which apps then run on. */
export const testRedisCluster = () => process.env.TEST_REDIS_CLUSTER_NODES || undefined

/** Workers on an app's context, as ROLE=all runs them. */
export async function startWorkers(tessera: Tessera, options: Partial<WorkerOptions> = {}): Promise<Workers> {
  const { ctx } = tessera
  const workers = new Workers(ctx, {
    locks: ctx.locks,
    log: tessera.app.log,
    lockDurationMs: 2000,
    ...options,
  })
  await workers.start()
  return workers
}

export interface TestApp extends Tessera {
  workers: Workers | null
  resources: Resources
  prefix: string
  databaseUrl: string
  /** A cookie-keeping client, as one browser would be. */
  client(headers?: Record<string, string>): Client
  /**
   * Another API node on the same PostgreSQL and Redis, closed before the test's cleanup.
   * `ownConnections`: with its own Redis connections and database pool, as another process has.
   */
  node(overrides?: Partial<Pick<AppDeps, 'config' | 'logStream'>>, opts?: { ownConnections?: boolean }): Promise<Tessera>
  /** Creates a user (and optional platforms) directly in the database. */
  user(username: string, opts?: { role?: string; password?: string; platforms?: string[] }): Promise<{ id: number; platformIds: number[] }>
}

export interface BuildOptions {
  /** Run the BullMQ workers in this process too (like ROLE=all). */
  workers?: boolean | Partial<WorkerOptions>
  /** Reach PostgreSQL and/or Redis through these proxies (test/helpers/tcp-proxy.ts), to cut or hold traffic. */
  via?: { postgres?: TcpProxy; redis?: TcpProxy }
  /** Make the throw-away database on this PostgreSQL (a URL, e.g. test/helpers/private-postgres.ts's) instead of the shared one. */
  postgres?: string
}

/** Starts an app; `env` overrides configuration variables (as strings, like the environment). */
export async function build(t: Teardown, env: Record<string, string> = {}, options: BuildOptions = {}): Promise<TestApp> {
  const id = randomBytes(6).toString('hex')
  const databaseUrl = testDatabaseUrl(`tessera_test_${id}`, options.postgres)
  const prefix = `tessera-test:${id}:`
  const config = loadConfig({
    DATABASE_URL: options.via?.postgres?.url(databaseUrl) ?? databaseUrl,
    REDIS_URL: options.via?.redis?.url(testRedisUrl()) ?? testRedisUrl(),
    REDIS_KEY_PREFIX: prefix,
    // On the test cluster unless the test reaches Redis through a proxy of its own.
    ...(testRedisCluster() && !options.via?.redis ? { REDIS_CLUSTER_NODES: testRedisCluster()! } : {}),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ADMIN_PASSWORD,
    SESSION_SECRET: 'test-secret-that-is-at-least-32-characters-long',
    ...env,
  })
  // A copy of the migrated template (test/helpers/database.ts): start-up finds it migrated.
  // A private server (one build on it, mostly) migrates its own database as before.
  if (!options.postgres) await createTestDatabase(databaseUrl)
  const resources = await openResources(config)
  const tessera = await buildApp({ config, database: resources.database, redis: resources.redis, secret: resources.secret })
  await tessera.app.ready()
  const nodes: Tessera[] = [tessera]
  const nodeResources: Resources[] = []
  const workers = options.workers ? await startWorkers(tessera, options.workers === true ? {} : options.workers) : null
  t.teardown(async () => {
    await workers?.close()
    for (const node of nodes) await node.close()
    for (const r of nodeResources) await r.close()
    await deleteKeysWithPrefix(resources.redis, prefix)
    await resources.close()
    // A private server may be down when a test fails mid-outage; its cluster is removed whole.
    await dropDatabase(databaseUrl).catch((err) => {
      if (!options.postgres) throw err
    })
  })
  return {
    ...tessera,
    workers,
    resources,
    prefix,
    databaseUrl,
    client: (headers = {}) => new Client(tessera.app, headers),
    async node(overrides = {}, opts = {}) {
      let own = resources
      if (opts.ownConnections) {
        own = await openResources(config)
        nodeResources.push(own)
      }
      const node = await buildApp({ config, database: own.database, redis: own.redis, secret: own.secret, ...overrides })
      await node.app.ready()
      nodes.push(node)
      return node
    },
    async user(username, opts = {}) {
      const u = await createUser(resources.database.db, { username, password: opts.password ?? PASSWORD, role: opts.role ?? 'user', email: `${username}@example.com` })
      const platformIds: number[] = []
      for (const [i, name] of (opts.platforms ?? []).entries()) {
        const [row] = await resources.database.sql`insert into platforms (user_id, name, type, instance_url, is_default)
          values (${u.id}, ${name}, 'mastodon', ${`https://${name.toLowerCase().replace(/\W+/g, '')}.example`}, ${i === 0}) returning id`
        platformIds.push(row!.id as number)
      }
      return { id: u.id, platformIds }
    },
  }
}

/** Creates each user and signs them in, one browser each. */
export async function signedIn(app: TestApp, ...names: string[]): Promise<Client[]> {
  const clients: Client[] = []
  for (const name of names) {
    await app.user(name)
    clients.push(await app.client().signIn(name))
  }
  return clients
}

type Body = Record<string, unknown> | unknown[] | undefined

/** Keeps the `sid` cookie and the CSRF token like a browser tab of one session would. */
export class Client {
  sid: string | undefined
  csrf: string | undefined
  sessionId: string | undefined

  constructor(
    private readonly app: FastifyInstance,
    private readonly headers: Record<string, string>,
  ) {}

  async request(method: InjectOptions['method'], url: string, body?: Body, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const all: Record<string, string> = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', ...this.headers, ...headers }
    if (this.sid) all.cookie = `sid=${this.sid}`
    if (this.csrf && method !== 'GET' && !('x-csrf-token' in headers)) all['x-csrf-token'] = this.csrf
    const res = await this.app.inject({ method, url, headers: all, ...(body !== undefined ? { payload: body } : {}) })
    const set = res.cookies.find((c) => c.name === 'sid')
    if (set) this.sid = set.value || undefined
    return res
  }

  get = (url: string, headers?: Record<string, string>) => this.request('GET', url, undefined, headers)
  post = (url: string, body?: Body, headers?: Record<string, string>) => this.request('POST', url, body, headers)
  put = (url: string, body?: Body, headers?: Record<string, string>) => this.request('PUT', url, body, headers)
  patch = (url: string, body?: Body, headers?: Record<string, string>) => this.request('PATCH', url, body, headers)
  delete = (url: string, body?: Body, headers?: Record<string, string>) => this.request('DELETE', url, body, headers)

  async login(username: string, password = PASSWORD, extra: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
    const res = await this.post('/api/auth/login', { username, password, ...extra })
    if (res.statusCode === 200) {
      const body = res.json()
      this.csrf = body.csrfToken
      this.sessionId = body.session.id
    }
    return res
  }

  /** Signs in and fails loudly if that did not work. */
  async signIn(username: string, password = PASSWORD): Promise<this> {
    const res = await this.login(username, password)
    if (res.statusCode !== 200) throw new Error(`sign-in of ${username} failed: ${res.statusCode} ${res.body}`)
    return this
  }
}
