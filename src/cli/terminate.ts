// `tessera terminate`: DELETE /admin/sessions/:id from a shell. Sessions.end does the rest
// (the tabs hear it through the bus, the session-ended job releases locks, the audit names the actor).
import { adminActor, AS_OPTION, AS_USAGE } from './actor.js'
import { type Command, CommandError, onePositional, option, readArgs, UsageError } from './command.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MAX_REASON = 500 // as the HTTP route

const usage = `Usage: tessera terminate <sessionId> --reason TEXT [--as NAME]

End a live session. Its tabs are told "Session terminated by administrator" with the reason.

${option('--reason TEXT', 'why (required; shown to the user, kept in the audit trail)')}
${AS_USAGE}`

export const terminateCommand: Command = {
  name: 'terminate',
  summary: 'end a session, telling its tabs why',
  usage,
  prepare(args) {
    const { values, positionals } = readArgs(args, { reason: { type: 'string' }, ...AS_OPTION })
    const id = onePositional(positionals, 'the session id')
    // A malformed id is a usage error (exit 2), as HTTP answers it 400 before the route
    // runs; a well-formed id that names no session is exit 1, as HTTP's 404.
    if (!UUID.test(id)) throw new UsageError(`"${id.slice(0, 80)}" is not a session id: session ids are UUIDs, such as 6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4 (see tessera sessions)`)
    const { reason } = values
    if (reason === undefined || reason.trim() === '') throw new UsageError('--reason "why" is required')
    if (reason.length > MAX_REASON) throw new UsageError(`--reason has at most ${MAX_REASON} characters`)

    return async (ctx, io) => {
      const actor = await adminActor(ctx, values.as)
      const session = await ctx.sessions.byId(id.toLowerCase())
      if (!session) throw new CommandError(`no session has the id ${id}`)
      const alreadyEnded = () => new CommandError(`session ${session.id} has already ended`)
      if (session.status === 'ended') throw alreadyEnded()
      const ended = await ctx.sessions.end([session.id], 'admin', { actorUserId: actor.id, note: reason })
      if (ended.length === 0) throw alreadyEnded() // ended by someone else just now
      io.out(`Terminated session ${session.id} of ${session.username}.\n`)
    }
  },
}
