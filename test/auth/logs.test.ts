import t from 'tap'
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
