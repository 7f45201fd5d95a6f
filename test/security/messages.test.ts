// Errors a person can act on (http.md: "a sentence a person can act on"): a choice names its
// allowed values, a pattern says what it wants in words, a wrong current password says so,
// and counts agree in number. Before: "must be equal to constant", a raw regular
// expression, "The username or password is wrong." for a signed-in user, "1 devices".
import t from 'tap'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

t.test('validation messages name the allowed values and describe patterns', async (t) => {
  const app = await build(t)
  const { id } = await app.user('ada')
  const ada = await app.client().signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const message = async (res: Promise<{ statusCode: number; json(): { error: { code: string; message: string } } }>) => {
    const r = await res
    t.equal(r.statusCode, 400)
    t.equal(r.json().error.code, 'VALIDATION_FAILED')
    return r.json().error.message
  }
  t.equal(await message(admin.patch(`/admin/users/${id}`, { role: 'owner' })), 'body.role must be one of "admin", "reviewer", "user"')
  t.equal(await message(admin.get('/admin/sessions?status=away')), 'querystring.status must be one of "active", "idle"')
  t.match(await message(admin.get('/admin/sessions?sort=bogus')), /^querystring\.sort must be one of "[a-zA-Z]+", .*"lastActivity"/)
  t.equal(await message(admin.get('/admin/sessions?order=up')), 'querystring.order must be one of "asc", "desc"')
  t.equal(
    await message(ada.post('/api/platforms', { name: 'Mine', type: 'mastodon', instanceUrl: 'ftp://files.example' })),
    'body.instanceUrl must be an http:// or https:// URL, such as https://mastodon.social',
  )
  t.match(await message(ada.post('/api/platforms', { name: 'Mine', type: 'myspace', instanceUrl: 'https://x.example' })), 'body.type must be one of "pixelfed", "mastodon", "other"')
  t.match(await message(admin.post('/admin/users', { username: 'two words', email: 'x@example.com', password: 'long-enough-pw', role: 'user' })), 'body.username may hold only letters')

  const { tab } = await openTab(await listen(app), admin.sid!, { tabId: 'a' })
  tab.send({ type: 'admin.subscribe', filter: { status: 'away' } })
  const error = await tab.type('error')
  t.equal(error.message, 'admin.subscribe: filter/status must be one of "active", "idle"', 'the socket names allowed values too')
  await tab.close()
})

t.test('a wrong current password says it is the current password; counts agree in number', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const wrong = await ada.post('/api/auth/password', { currentPassword: 'not-my-password', newPassword: 'a-brand-new-password' })
  t.equal(wrong.statusCode, 401)
  t.equal(wrong.json().error.code, 'INVALID_CREDENTIALS')
  t.match(wrong.json().error.message, /^The current password is wrong/)
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'and the session stays signed in')

  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const limits = await admin.put('/admin/sessions/config', { concurrentLimits: { default: 1 }, limitPolicy: 'block_new' })
  t.equal(limits.statusCode, 200)
  const second = await app.client().login('ada')
  t.equal(second.statusCode, 409)
  t.match(second.json().error.message, /^You are signed in on 1 device, the most allowed/)
})
