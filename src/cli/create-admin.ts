// `tessera create-admin`: POST /admin/users with role admin, from a shell. UserAdmin.create
// checks the password rule, refuses a taken name and audits `user.created` with the actor.
import { randomBytes } from 'node:crypto'
import { UserAdmin } from '../admin/users.js'
import { adminActor, AS_OPTION, AS_USAGE } from './actor.js'
import { type Command, CommandError, type Io, onePositional, option, readArgs, UsageError } from './command.js'

// As the HTTP route's schema.
const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const MAX_PASSWORD = 1024

const usage = `Usage: tessera create-admin <username> [--email E] [--password-stdin] [--as NAME]

Create an admin account. Its password is generated and printed once, unless given on stdin.

${option('--email E', "the account's email address")}
${option('--password-stdin', 'read the password from stdin instead (e.g. piped from a password manager)')}
${AS_USAGE}`

async function readPassword(io: Io): Promise<string> {
  let text = ''
  for await (const chunk of io.stdin) {
    text += chunk.toString()
    if (text.length > MAX_PASSWORD + 2) break
  }
  return text.replace(/\r?\n$/, '')
}

export const createAdminCommand: Command = {
  name: 'create-admin',
  summary: 'create an admin account',
  usage,
  prepare(args) {
    const { values, positionals } = readArgs(args, { email: { type: 'string' }, 'password-stdin': { type: 'boolean' }, ...AS_OPTION })
    const username = onePositional(positionals, 'the username')
    if (!USERNAME.test(username)) throw new UsageError('a username has 1 to 64 letters, digits or _ . @ -')
    const { email } = values
    if (email !== undefined && (email.length > 320 || !EMAIL.test(email))) throw new UsageError(`--email "${email}" is not an email address`)

    return async (ctx, io) => {
      const actor = await adminActor(ctx, values.as)
      const given = values['password-stdin'] ? await readPassword(io) : null
      if (given !== null && given.length > MAX_PASSWORD) throw new CommandError(`a password has at most ${MAX_PASSWORD} characters`)
      const password = given ?? randomBytes(18).toString('base64url')
      const user = await new UserAdmin(ctx).create({ username, email: email ?? null, password, role: 'admin' }, actor.id)
      io.out(`Created admin "${user.username}" (id ${user.id}).\n`)
      if (given === null) io.out(`Password: ${password}\nIt is shown only this once: sign in and change it.\n`)
    }
  },
}
