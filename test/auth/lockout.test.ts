// The failed-login lockout (http.md: "lockout after the threshold") must hold however the
// guesses are sent: one after another or all at once.
import t from 'tap'
import { build, PASSWORD } from '../helpers/app.js'

t.test('guesses sent at once learn no more than guesses sent one by one: the right one past the lockout is refused', async (t) => {
  // issue 12, defect 9
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '3', LOGIN_RATE_LIMIT: '100/min' })
  await app.user('ada')
  // Fourteen wrong guesses and, sent last, the right password, all at once.
  const guesses = [...Array.from({ length: 14 }, (_, i) => `wrong-guess-${i}`), PASSWORD]
  const answers = await Promise.all(guesses.map((password) => app.client().login('ada', password)))
  const codes = answers.map((r) => r.statusCode)

  // Checks finish in no fixed order: what must hold is that no more answers get through
  // than three guesses one by one would get, and that nothing checked after the lockout began
  // is let in. The right password gets in only if its check finished among those three.
  const told = codes.filter((c) => c !== 423)
  t.ok(told.length <= 3, `at most three answers before the lockout, as one by one (got ${JSON.stringify(codes)})`)
  t.ok(codes.filter((c) => c === 401).length <= 2, 'at most two wrong guesses are told so')
  t.equal(codes.filter((c) => c === 423).length, guesses.length - told.length, 'every other answer is ACCOUNT_LOCKED')
  if (codes.at(-1) === 200) t.ok(told.length <= 3, 'the right password got in only as one of those three answers')
  else t.equal(codes.at(-1), 423, 'the right password, checked after the lockout began, does not get in')
  t.ok(answers.every((r) => r.statusCode !== 423 || r.json().error.code === 'ACCOUNT_LOCKED'))
  const [user] = await app.ctx.database.sql`select locked_until from users where username = 'ada'`
  t.ok((user!.locked_until as Date).getTime() > Date.now(), 'the account is locked')
  const locks = await app.ctx.database.sql`select count(*)::int as n from audit_events where type = 'user.locked'`
  t.equal(locks[0]!.n, 1, 'one lockout began')
  t.equal((await app.client().login('ada', PASSWORD)).statusCode, 423, 'and it holds')
})
