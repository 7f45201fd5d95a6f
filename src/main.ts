// Process entry: reads config, opens PostgreSQL and Redis, starts the API and/or the
// workers by ROLE, and shuts down cleanly on SIGTERM/SIGINT (R5).
import Fastify from 'fastify'
import { pino } from 'pino'
import { buildApp, buildContext } from './app.js'
import { ConfigError, loadConfig, readDotEnv } from './config.js'
import type { AppContext } from './context.js'
import { DependencyError } from './infra/dependency-error.js'
import { installErrorHandler } from './infra/errors.js'
import { loggerOptions } from './infra/logger.js'
import { Workers } from './jobs/workers.js'
import { opsRoutes } from './ops/routes.js'
import { openResources } from './resources.js'

/** A worker-only process serves /healthz, /readyz and /metrics on WORKER_PORT. */
async function workerServer(ctx: AppContext) {
  const app = Fastify({ logger: loggerOptions(ctx.config.logLevel) })
  installErrorHandler(app)
  await app.register(opsRoutes, { ctx, openapi: false })
  const address = await app.listen({ host: ctx.config.host, port: ctx.config.workerPort })
  return { app, address }
}

async function main() {
  const config = loadConfig({ ...readDotEnv(), ...process.env })
  const log = pino(loggerOptions(config.logLevel))
  const resources = await openResources(config)
  if (resources.bootstrap) {
    // Printed once, on the start that created the account; never logged again.
    process.stdout.write(
      `\n  First admin created: username "${resources.bootstrap.username}", password "${resources.bootstrap.password}"\n` +
        '  It is shown only this once: sign in and change it.\n\n',
    )
  }
  const deps = { config, database: resources.database, redis: resources.redis, secret: resources.secret }
  const closers: (() => Promise<unknown>)[] = []

  let ctx: AppContext
  let address: string
  if (config.role === 'worker') {
    ctx = buildContext(deps)
    const server = await workerServer(ctx)
    address = server.address
    closers.push(() => server.app.close(), () => ctx.queues.close())
  } else {
    const tessera = await buildApp(deps)
    ctx = tessera.ctx
    address = await tessera.app.listen({ host: config.host, port: config.port })
    closers.push(() => tessera.close())
  }
  if (config.role !== 'api') {
    const workers = new Workers(ctx, { locks: ctx.locks, log })
    await workers.start()
    // Workers first: running jobs finish while the API still answers.
    closers.unshift(() => workers.close())
  }
  // `address` is where this process listens (with PORT=0 or WORKER_PORT=0, the port picked).
  log.info({ role: config.role, url: config.publicUrl, address }, 'Tessera is up')

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
