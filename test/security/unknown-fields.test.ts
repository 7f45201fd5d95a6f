// Unknown fields are refused alike on every API route (http.md: "rejected or ignored
// consistently"): a route that takes no query or no body refuses one it was sent, as the
// routes that list their fields do. Before, such routes accepted anything (`[1]`, `{"zzz":1}`).
import t from 'tap'
import { build } from '../helpers/app.js'

t.test('a route that takes no query or body refuses unknown fields; sent nothing, it still answers', async (t) => {
  const app = await build(t)
  await app.user('ada', { role: 'admin' })
  const ada = await app.client().signIn('ada')
  const sessionId = (await ada.get('/api/session_state')).json().session.id as string

  for (const url of ['/api/session_state', '/api/auth/csrf', '/api/sessions', '/api/platforms', `/admin/sessions/${sessionId}`, '/admin/sessions/config']) {
    const res = await ada.get(`${url}?zzz=1`)
    t.equal(res.statusCode, 400, `GET ${url}?zzz=1`)
    t.match(res.json().error, { code: 'VALIDATION_FAILED', message: /zzz/ })
    t.equal((await ada.get(url)).statusCode, 200, `GET ${url} without a query`)
  }
  for (const url of ['/api/session/validate', '/api/realtime/ticket', '/api/session/generate-uuid']) {
    for (const body of [{ zzz: 1 }, [1]]) {
      const res = await ada.post(url, body)
      t.equal(res.statusCode, 400, `POST ${url} ${JSON.stringify(body)}`)
      t.equal(res.json().error.code, 'VALIDATION_FAILED')
    }
    t.equal((await ada.post(url)).statusCode, 200, `POST ${url} without a body`)
    t.equal((await ada.post(url, {})).statusCode, 200, `POST ${url} with {}`)
  }
  const logout = await ada.post('/api/auth/logout', { zzz: 1 })
  t.equal(logout.statusCode, 400, 'logout with an unknown field is refused')
  t.equal((await ada.post('/api/auth/logout')).statusCode, 204, 'logout without a body signs out')
})
