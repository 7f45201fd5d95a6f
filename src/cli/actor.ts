// The admin a CLI change is recorded against (`--as NAME`, default ADMIN_USERNAME), so the
// audit trail names a person, as it does for the same change made over HTTP.
import { findUserByUsername, type UserRow } from '../auth/users.js'
import type { TesseraParts } from '../app.js'
import { CommandError, option } from './command.js'

export const AS_OPTION = { as: { type: 'string' } } as const

export const AS_USAGE = option('--as NAME', 'the admin recorded as the actor (default: ADMIN_USERNAME)')

export async function adminActor(ctx: TesseraParts, name: string | undefined): Promise<UserRow> {
  const username = name ?? ctx.config.bootstrapAdmin.username
  const user = await findUserByUsername(ctx.database.db, username)
  if (user?.role !== 'admin') throw new CommandError(`--as ${username}: there is no admin account of that name; name one with --as NAME`)
  if (user.disabled) throw new CommandError(`--as ${username}: that admin account is disabled; name another with --as NAME`)
  return user
}
