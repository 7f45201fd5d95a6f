// What a command of the operator CLI is, and the two ways it can refuse: a usage error
// (exit 2, nothing was opened) or an expected failure (exit 1, one line, no stack).
import { type ParseArgsConfig, parseArgs } from 'node:util'
import type { TesseraParts } from '../app.js'

/** Where a command writes: stdout for results, stderr for notices; stdin for secrets. */
export interface Io {
  out(text: string): void
  err(text: string): void
  stdin: AsyncIterable<string | Buffer>
}

/** The work a command does once PostgreSQL and Redis are open. */
export type Work = (ctx: TesseraParts, io: Io) => Promise<void>

export interface Command {
  name: string
  /** One line for the overview. */
  summary: string
  /** Synopsis and options, shown by `tessera help <name>` and after a usage error. */
  usage: string
  /** Reads and checks the arguments before anything is opened. */
  prepare(args: string[]): Work
}

/** Wrong arguments: the command's usage follows the message; exit 2. */
export class UsageError extends Error {}

/** An expected failure (no such session, already ended): one line; exit 1. */
export class CommandError extends Error {}

/** `--help` on a command: its usage on stdout; exit 0. */
export class HelpRequested extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>

/** util.parseArgs in strict mode, with `--help` on every command and its errors as UsageError. */
export function readArgs<O extends Options>(args: string[], options: O) {
  const config = { args, options: { ...options, help: { type: 'boolean', short: 'h' } as const }, allowPositionals: true as const, strict: true as const }
  let parsed: ReturnType<typeof parseArgs<typeof config>>
  try {
    parsed = parseArgs(config)
  } catch (err) {
    // Node's messages go on with a hint about `--`; the first sentence is the useful part.
    throw new UsageError((err as Error).message.split('. ')[0]!.replace(/\.$/, ''))
  }
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested()
  return parsed
}

/** The one positional argument a command takes. */
export function onePositional(positionals: string[], what: string): string {
  if (positionals.length === 0) throw new UsageError(`missing ${what}`)
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`)
  return positionals[0]!
}

/** One line of a usage's option list; every command aligns its descriptions in one column. */
export const option = (flag: string, meaning: string) => `  ${flag.padEnd(18)}${meaning}`
