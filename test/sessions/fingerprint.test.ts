// Fingerprint tolerance (docs/api.md, "Fingerprinting"): a session is bound to its browser
// family and major version (within FINGERPRINT_MAJOR_TOLERANCE), OS and device type. A
// browser update and a new language preference keep the session (the stored fingerprint
// follows, and the drift is audited); another browser on the same cookie ends it as
// `compromised`. Before, any byte of User-Agent or Accept-Language ended it.
import t from 'tap'
import { ADMIN_PASSWORD, build } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const chrome = (major: number, os = 'X11; Linux x86_64') => `Mozilla/5.0 (${os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${major}.0.0.0 Safari/537.36`
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0'

t.test('a browser update and a new language keep the session; the fingerprint follows and the drift is audited', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const ada = app.client({ 'user-agent': chrome(140), 'accept-language': 'en-GB' })
  await ada.signIn('ada')
  const admin = await app.client().signIn('admin', ADMIN_PASSWORD)
  const before = (await admin.get(`/admin/sessions/${ada.sessionId}`)).json().fingerprint
  t.equal(before, 'v2:Chrome|140|Linux|desktop', 'bound to browser family, major version, OS and device type')

  t.equal((await ada.get('/api/session_state', { 'accept-language': 'nb-NO,nb;q=0.9' })).statusCode, 200, 'a new language preference')
  t.equal((await ada.get('/api/session_state', { 'x-forwarded-host': 'example.com', dnt: '1' })).statusCode, 200, 'more headers')
  t.equal((await ada.post('/api/session/validate', undefined, { 'user-agent': chrome(140).replace('Safari/537.36', 'Safari/537.36 Edg-less') })).statusCode, 200, 'the same browser with a different build string')

  // The browser updates itself: next major version.
  const updated = await ada.get('/api/session_state', { 'user-agent': chrome(141) })
  t.equal(updated.statusCode, 200, 'Chrome 140 → 141 keeps the session')
  const detail = (await admin.get(`/admin/sessions/${ada.sessionId}`)).json()
  t.equal(detail.fingerprint, 'v2:Chrome|141|Linux|desktop', 'the stored fingerprint follows the update')
  t.match(detail.userAgent, /Chrome\/141/, 'and so does the user agent shown to admins')
  const audit = await app.ctx.database.sql`select data from audit_events where type = 'session.fingerprint_drift' and session_id = ${ada.sessionId!}`
  t.equal(audit.length, 1, 'the drift is audited once')
  t.match(audit[0]!.data, { from: 'v2:Chrome|140|Linux|desktop', to: 'v2:Chrome|141|Linux|desktop' })
  // The tolerance counts from the stored fingerprint: 141 → 143 is two more versions.
  t.equal((await ada.get('/api/session_state', { 'user-agent': chrome(143) })).statusCode, 200, 'another update within the tolerance')
  t.equal((await ada.get('/api/session_state', { 'user-agent': chrome(143) })).statusCode, 200, 'and the next request from it')
  const tab = await openTab(await listen(app), ada.sid!, { tabId: 't' }, { headers: { 'user-agent': chrome(143) } })
  t.equal(tab.welcome.type, 'welcome', 'the updated browser opens a socket')
  await tab.tab.close()
  t.equal((await app.ctx.alerts.list({ type: 'fingerprint_mismatch', limit: 10 })).items.length, 0, 'no alert was raised')
})

for (const [what, userAgent] of [
  ['another browser', FIREFOX],
  ['another OS', chrome(140, 'Windows NT 10.0; Win64; x64')],
  ['another device type', 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Mobile Safari/537.36'],
  ['a version jump past the tolerance', chrome(150)],
  ['an HTTP client', 'curl/8.0'],
] as const) {
  t.test(`${what} on the same cookie ends the session as compromised, with an alert`, async (t) => {
    const app = await build(t)
    await app.user('ada')
    const ada = app.client({ 'user-agent': chrome(140) })
    await ada.signIn('ada')
    const thief = app.client({ 'user-agent': userAgent })
    thief.sid = ada.sid
    t.match((await thief.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'compromised' } })
    t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'compromised' } }, 'the owner is signed out too')
    t.equal((await app.ctx.alerts.list({ type: 'fingerprint_mismatch', limit: 10 })).items.length, 1, 'an alert was raised')
  })
}
