// `tessera unlock`: POST /admin/users/:id/unlock from a shell.
import { UserAdmin } from '../admin/users.js'
import { findUserByUsername } from '../auth/users.js'
import { adminActor, AS_OPTION, AS_USAGE } from './actor.js'
import { type Command, CommandError, onePositional, readArgs } from './command.js'

const usage = `Usage: tessera unlock <username> [--as NAME]

Lift a failed-login lockout and forget the failures counted so far.

${AS_USAGE}`

export const unlockCommand: Command = {
  name: 'unlock',
  summary: 'lift a failed-login lockout',
  usage,
  prepare(args) {
    const { values, positionals } = readArgs(args, AS_OPTION)
    const username = onePositional(positionals, 'the username')

    return async (ctx, io) => {
      const actor = await adminActor(ctx, values.as)
      const user = await findUserByUsername(ctx.database.db, username)
      if (!user) throw new CommandError(`no user is named "${username}"`)
      const wasLocked = user.lockedUntil !== null && user.lockedUntil.getTime() > Date.now()
      await new UserAdmin(ctx).unlock(user.id, actor.id)
      io.out(
        wasLocked
          ? `Unlocked ${user.username}: they can sign in again.\n`
          : `${user.username} was not locked; their failed sign-ins are forgotten.\n`,
      )
    }
  },
}
