// The failed-login lockout (http.md: "lockout after the threshold") must hold however the
// guesses are sent: one after another or all at once.
import t from 'tap'
import { build, PASSWORD } from '../helpers/app.js'

t.test('guesses sent in parallel get no more password checks than the threshold allows', async (t) => {
  // issue 12, defect 9
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3', LOGIN_RATE_LIMIT: '100/min' })
  await app.user('ada')
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => app.client().login('ada', `wrong-guess-${i}`)))

  const reasons = await app.ctx.database.sql`select reason, count(*)::int as n from login_attempts where username = 'ada' group by reason`
  const count = (reason: string) => (reasons.find((r) => r.reason === reason)?.n as number | undefined) ?? 0
  t.equal(count('wrong_password'), 3, 'three guesses had their password checked')
  t.equal(count('locked'), 9, 'the nine others were refused unchecked')
  t.equal(answers.filter((r) => r.statusCode === 423).length, 10, 'the third failure locked the account, and the nine answered locked')
  t.equal(answers.filter((r) => r.statusCode === 401).length, 2)
  t.ok(answers.every((r) => r.statusCode === 401 || r.json().error.code === 'ACCOUNT_LOCKED'))

  const right = await app.client().login('ada', PASSWORD)
  t.equal(right.statusCode, 423, 'the right password comes too late')
})
