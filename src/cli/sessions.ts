// `tessera sessions`: the live sessions, as GET /admin/sessions lists them.
import { listSessions } from '../admin/session-list.js'
import { isRole, ROLES } from '../settings/roles.js'
import type { SessionView } from '../sessions/views.js'
import { type Command, option, readArgs, UsageError } from './command.js'
import { cell, relativeTime, table } from './table.js'

const MAX_LIMIT = 10_000

const usage = `Usage: tessera sessions [--user NAME] [--role ROLE] [--status active|idle] [--limit N] [--json]

List live sessions, most recently active first.

${option('--user NAME', "only this user's sessions")}
${option('--role ROLE', `only sessions of users with this role (${ROLES.join(', ')})`)}
${option('--status STATUS', 'active or idle')}
${option('--limit N', `show at most N sessions (default 50, at most ${MAX_LIMIT})`)}
${option('--json', 'print {"items": [...], "total": N}, as GET /admin/sessions does')}`

function device(d: SessionView['device']): string {
  const name = [d.browser, d.os].filter(Boolean).join(' on ')
  return name ? (d.type === 'desktop' ? name : `${name} (${d.type})`) : d.type
}

function render(items: SessionView[], total: number, now: number): string {
  const headers = ['ID', 'USER', 'ROLE', 'STATUS', 'LAST ACTIVITY', 'VIEW', 'IP', 'DEVICE', 'TABS', 'PLATFORM']
  const rows = items.map((v) => [
    v.id,
    cell(v.username),
    cell(v.role),
    v.status,
    relativeTime(v.lastActivity, now),
    cell(v.currentView),
    cell(v.ip),
    cell(device(v.device)),
    String(v.tabs),
    cell(v.platform?.name),
  ])
  const count = items.length < total ? `${items.length} of ${total} sessions (raise --limit to see more)` : `${total} session${total === 1 ? '' : 's'}`
  return `${table(headers, rows, new Set([8]))}\n\n${count}`
}

export const sessionsCommand: Command = {
  name: 'sessions',
  summary: 'list live sessions',
  usage,
  prepare(args) {
    const { values, positionals } = readArgs(args, {
      user: { type: 'string' },
      role: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    })
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`)
    const { user, role, status } = values
    if (status !== undefined && status !== 'active' && status !== 'idle') throw new UsageError(`--status must be active or idle, not "${status}"`)
    if (role !== undefined && !isRole(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}, not "${role}"`)
    const limit = values.limit === undefined ? 50 : Number(values.limit)
    if (!/^\d+$/.test(values.limit ?? '50') || limit < 1 || limit > MAX_LIMIT) {
      throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIMIT}, not "${values.limit}"`)
    }

    return async (ctx, io) => {
      const all = await listSessions(ctx.sessionDetails, ctx.sessions, await ctx.settings.get(), { user, role, status })
      const items = all.slice(0, limit)
      if (values.json) io.out(`${JSON.stringify({ items, total: all.length }, null, 2)}\n`)
      else if (all.length === 0) io.out(user || role || status ? 'No live session matches.\n' : 'No live sessions.\n')
      else io.out(`${render(items, all.length, Date.now())}\n`)
    }
  },
}
