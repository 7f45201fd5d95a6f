// Opens what a CLI command needs, exactly as the service does (openResources, then
// buildContext), and closes all of it so the process can exit as soon as the work is done.
import { buildContext } from '../app.js'
import type { Config } from '../config.js'
import type { AppContext } from '../context.js'
import { openResources } from '../resources.js'
import type { Io } from './command.js'

export interface CliContext {
  ctx: AppContext
  close(): Promise<void>
}

export async function openCli(config: Config, io: Pick<Io, 'err'>): Promise<CliContext> {
  // Never creates or migrates: a mistyped DATABASE_URL must not make a new, empty database.
  const resources = await openResources(config, { prepare: false })
  if (resources.bootstrap) {
    // The CLI ran before the service ever did: this is the only chance to see the password.
    // stderr, so that `sessions --json` stays parseable.
    io.err(
      `First admin created: username "${resources.bootstrap.username}", password "${resources.bootstrap.password}"\n` +
        'It is shown only this once: sign in and change it.\n',
    )
  }
  const ctx = buildContext({ config, database: resources.database, redis: resources.redis, secret: resources.secret })
  let closing: Promise<void> | undefined
  return {
    ctx,
    close: () => {
      // BullMQ holds its own Redis connections: they must go too, or the process lingers.
      closing ??= ctx.queues
        .close()
        .catch(() => {})
        .finally(() => resources.close())
      return closing
    },
  }
}
