// Process entry: reads config, opens PostgreSQL and Redis, starts the API and/or the
// workers by ROLE, and shuts down cleanly on SIGTERM/SIGINT (R5).
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp, buildCore } from './app.js'
import { type Config, ConfigError, defaultPublicUrl, environment, listenFailure, loadConfig } from './config.js'
import { accountTable, seedDemoAccounts } from './demo/accounts.js'
import { DependencyError } from './infra/dependency-error.js'
import { loggerOptions } from './infra/logger.js'
import jobs from './jobs/index.js'
import ops from './ops/index.js'
import { openResources } from './resources.js'

const indent = (text: string) => text.replace(/^/gm, '    ')

/** The URL to open: PUBLIC_URL, or this process's own port when PORT=0 picked one. */
function servedUrl(config: Config, address: string): string {
  if (config.publicUrlGiven || config.port !== 0) return config.publicUrl
  return defaultPublicUrl(config.host, Number(new URL(address).port))
}

/**
 * Listens on HOST and `portVariable`; a failure that the settings explain (a port in use, an
 * address not of this machine) closes the app, so that workers started by `ready` stop, and
 * becomes one line.
 */
async function listen(app: FastifyInstance, close: () => Promise<unknown>, config: Config, portVariable: 'PORT' | 'WORKER_PORT'): Promise<string> {
  const port = portVariable === 'PORT' ? config.port : config.workerPort
  try {
    return await app.listen({ host: config.host, port })
  } catch (err) {
    const explained = listenFailure(err, config.host, portVariable, port)
    if (!explained) throw err
    await close().catch(() => {})
    throw explained
  }
}

async function main() {
  const config = loadConfig(environment())
  const log = pino(loggerOptions(config.logLevel))
  const resources = await openResources(config)
  if (resources.bootstrap) {
    // Printed once, on the start that created the account; never logged again.
    process.stdout.write(
      `\n  First admin created: username "${resources.bootstrap.username}", password "${resources.bootstrap.password}"\n` +
        '  It is shown only this once: sign in and change it.\n\n',
    )
  }
  if (resources.adminCreated && !config.production) {
    // A new database in development: demo accounts, so the first page has someone to sign in as.
    const accounts = await seedDemoAccounts(resources.database)
    process.stdout.write(`  Demo accounts (npm run seed:demo prints them again):\n\n${indent(accountTable(accounts))}\n\n`)
  }
  const deps = { config, database: resources.database, redis: resources.redis, secret: resources.secret }
  const closers: (() => Promise<unknown>)[] = []

  // The workers (ROLE=worker or all), as the jobs plugin; closing the app closes them first,
  // so that running jobs finish while the API still answers.
  const withJobs = async (app: FastifyInstance) => {
    if (config.role !== 'api') await app.register(jobs, { log })
  }
  let address: string
  if (config.role === 'worker') {
    // A worker-only process serves /healthz, /readyz and /metrics on WORKER_PORT.
    const core = await buildCore(deps)
    await core.app.register(ops, { openapi: false })
    await withJobs(core.app)
    address = await listen(core.app, () => core.close(), config, 'WORKER_PORT')
    closers.push(() => core.close())
  } else {
    const tessera = await buildApp(deps)
    await withJobs(tessera.app)
    address = await listen(tessera.app, () => tessera.close(), config, 'PORT')
    closers.push(() => tessera.close())
  }
  // `address` is where this process listens (with PORT=0 or WORKER_PORT=0, the port picked).
  const url = servedUrl(config, address)
  log.info({ role: config.role, url, address }, 'Tessera is up')
  if (config.role !== 'worker') process.stdout.write(`\n  Tessera is serving ${url}  (API docs: ${new URL('/docs', url)})\n\n`)

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    const force = setTimeout(() => process.exit(1), 10_000).unref()
    for (const close of closers) await close().catch((err) => log.warn({ err }, 'while shutting down'))
    await resources.close()
    clearTimeout(force)
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

main().catch((err) => {
  if (err instanceof ConfigError || err instanceof DependencyError) {
    process.stderr.write(`tessera: ${err.message}\n`)
  } else {
    process.stderr.write(`tessera: failed to start: ${(err as Error).stack ?? err}\n`)
  }
  process.exit(1)
})
