#!/usr/bin/env node
// The operator CLI: `npx tessera <command>` (built) or `npm run admin -- <command>` (tsx).
// It reads the service's configuration, opens PostgreSQL and Redis, runs one command
// through the same services as the HTTP API, closes everything and exits.
import { ConfigError, environment, loadConfig } from '../config.js'
import { DependencyError } from '../infra/dependency-error.js'
import { AppError } from '../infra/errors.js'
import { type Command, CommandError, HelpRequested, type Io, UsageError } from './command.js'
import { createAdminCommand } from './create-admin.js'
import { sessionsCommand } from './sessions.js'
import { terminateCommand } from './terminate.js'
import { unlockCommand } from './unlock.js'

const COMMANDS: Command[] = [sessionsCommand, terminateCommand, unlockCommand, createAdminCommand]

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length))
  return [
    'Usage: tessera <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  this text, or a command's options: tessera help <command>`,
    '',
    'Configuration comes from the environment and .env, as for the service (DATABASE_URL, REDIS_URL, ...).',
    'Exit status: 0 done, 1 failed, 2 wrong arguments.',
    '',
  ].join('\n')
}

async function run(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? rest[0] : undefined
    const command = COMMANDS.find((c) => c.name === topic)
    if (topic !== undefined && !command) {
      io.err(`tessera: unknown command "${topic}"\n`)
      io.out(overview())
      return 2
    }
    io.out(command ? `${command.usage}\n` : overview())
    return 0
  }
  const command = COMMANDS.find((c) => c.name === name)
  if (!command) {
    io.err(`tessera: unknown command "${name}"\n`)
    io.out(overview())
    return 2
  }
  let work: ReturnType<Command['prepare']>
  try {
    work = command.prepare(rest)
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.out(`${command.usage}\n`)
      return 0
    }
    if (err instanceof UsageError) {
      io.err(`tessera ${command.name}: ${err.message}\n\n${command.usage}\n`)
      return 2
    }
    throw err
  }
  const config = loadConfig(environment())
  // Loaded only now: the whole service comes with it, and `help` need not wait for that.
  const { openCli } = await import('./context.js')
  const cli = await openCli(config, io)
  try {
    await work(cli.ctx, io)
  } finally {
    await cli.close()
  }
  return 0
}

/** Expected failures are one line; anything else is a bug worth its stack. */
function report(err: unknown, io: Io): number {
  if (err instanceof ConfigError || err instanceof DependencyError || err instanceof CommandError || err instanceof AppError) {
    io.err(`tessera: ${err.message}\n`)
  } else {
    io.err(`tessera: failed: ${(err as Error).stack ?? err}\n`)
  }
  return 1
}

const io: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  stdin: process.stdin,
}

run(process.argv.slice(2), io)
  .catch((err) => report(err, io))
  .then((code) => {
    process.exitCode = code
    // Everything is closed, so the process ends by itself; this only guards against a
    // connection that will not let go, so an operator's shell never hangs.
    setTimeout(() => process.exit(code), 3000).unref()
  })
