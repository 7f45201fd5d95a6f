import pino from 'pino'
import t from 'tap'
import { lazyRequestLogger, loggerOptions } from '../../src/infra/logger.js'
import { build, PASSWORD } from '../helpers/app.js'

t.test('no token, CSRF token or password ever reaches a log line', async (t) => {
  const base = await build(t)
  const lines: string[] = []
  const logged = await base.node({ config: { ...base.ctx.config, logLevel: 'trace' }, logStream: { write: (line) => lines.push(line) } })
  await base.user('ada', { platforms: ['A'] })
  const login = await logged.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'ada', password: PASSWORD } })
  const token = login.cookies.find((c) => c.name === 'sid')!.value
  const csrf = login.json().csrfToken
  const headers = { cookie: `sid=${token}`, 'x-csrf-token': csrf, authorization: 'Bearer secret-bearer' }
  await logged.app.inject({ method: 'GET', url: `/api/session_state?ticket=${token}`, headers })
  await logged.app.inject({ method: 'POST', url: '/api/auth/password', headers, payload: { currentPassword: PASSWORD, newPassword: 'another-long-password' } })
  await logged.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'ada', password: 'wrong-password-here' } })
  const all = lines.join('\n')
  t.ok(lines.length > 5, 'requests were logged')
  t.match(all, /"reqId"/, 'log lines carry the request id')
  for (const secret of [token, csrf, PASSWORD, 'another-long-password', 'wrong-password-here', 'secret-bearer']) {
    t.notOk(all.includes(secret), `${secret.slice(0, 6)}… is not in the logs`)
  }
})

t.test('a request’s logger is made when it logs, with the request id, and only at levels that are on', async (t) => {
  const logged = (level: string) => {
    const lines: Record<string, unknown>[] = []
    const parent = pino({ ...loggerOptions(level) }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    return { parent, lines }
  }

  const quiet = logged('warn')
  // Counts the children made of the parent itself (pino's children inherit this property).
  let made = 0
  const parent = quiet.parent
  const child = parent.child
  parent.child = function (this: typeof parent, ...args: Parameters<typeof child>) {
    if (this === parent) made++
    return child.apply(this, args)
  } as typeof child
  const request = lazyRequestLogger(quiet.parent, { reqId: 'req-1' }, {})
  request.info('incoming request')
  request.debug('details')
  t.same(quiet.lines, [], 'nothing below the level is written')
  t.equal(made, 0, 'a request that logs nothing at the level makes no child')
  request.warn({ code: 'X' }, 'first')
  request.error('second')
  t.same(
    quiet.lines.map((l) => [l.reqId, l.msg, l.level]),
    [
      ['req-1', 'first', 40],
      ['req-1', 'second', 50],
    ],
    'lines at the level carry the request id',
  )
  t.equal(made, 1, 'the child is made once, at the first line')
  t.equal(request.level, 'warn', 'the level is the logger’s')
  const nested = request.child({ lockId: 'L' })
  nested.warn('nested')
  t.match(quiet.lines.at(-1), { reqId: 'req-1', lockId: 'L', msg: 'nested' }, 'a child of it keeps the request id')
  request.warn({ password: 'hunter2-long' }, 'redacted')
  t.equal(quiet.lines.at(-1)?.password, '[redacted]', 'redaction still applies')

  const verbose = logged('info')
  const routeDebug = lazyRequestLogger(verbose.parent, { reqId: 'req-2' }, { level: 'debug' })
  routeDebug.debug('a route with its own level')
  t.match(verbose.lines, [{ reqId: 'req-2', msg: 'a route with its own level' }], 'a route’s own log level is kept')
})
