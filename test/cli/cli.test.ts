// The operator CLI (`tessera …`) as an operator runs it: a separate process on the same
// PostgreSQL and Redis as a running app, configured only by the environment.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { configVariables } from '../../src/config.js'
import { cell, relativeTime } from '../../src/cli/table.js'
import { build, PASSWORD, type TestApp } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

// Some 30 CLI processes, most of which load the whole service (about 3 s of CPU each):
// more than the default per-file timeout on a busy machine.
t.setTimeout(300_000)
const FORCED = 'cli-test: forced exit'
// main.ts only calls process.exit when something it opened would not close: make that visible.
const WATCH_EXIT = `data:text/javascript,const e=process.exit;process.exit=(c)=>{process.stderr.write(${JSON.stringify(`${FORCED}\n`)});e(c)}`

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `tessera …` against the app's database and Redis prefix; resolves when it exits. */
function cli(t: Test, app: TestApp | null, args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const env: Record<string, string | undefined> = { ...process.env }
  for (const v of configVariables) delete env[v.env]
  if (app) {
    Object.assign(env, {
      DATABASE_URL: app.databaseUrl,
      REDIS_URL: app.ctx.config.redisUrl,
      REDIS_KEY_PREFIX: app.prefix,
      SESSION_SECRET: app.ctx.config.sessionSecret,
    })
  }
  Object.assign(env, { LOG_LEVEL: 'silent', ...opts.env })
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', WATCH_EXIT, 'src/cli/main.ts', ...args], { cwd: root, env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.stdin.end(opts.input ?? '')
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      t.notMatch(stderr, FORCED, `tessera ${args.join(' ')}: everything closed, the process ended by itself`)
      resolve({ code, stdout, stderr })
    })
  })
}

/** An expected failure is one line on stderr, without a stack. */
function oneLine(t: Test, stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '')
  t.equal(lines.length, 1, `stderr is one line: ${JSON.stringify(stderr)}`)
  return lines[0] ?? ''
}

async function userId(app: TestApp, username: string): Promise<number> {
  const [row] = await app.ctx.database.sql`select id from users where username = ${username}`
  return row!.id as number
}

t.test('terminate ends a session like DELETE /admin/sessions/:id: the open tab is told why and closed 4001', async (t) => {
  const app = await build(t)
  await app.user('ada')
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  const { tab } = await openTab(address, ada.sid!, { tabId: 'A' })

  const r = await cli(t, app, ['terminate', ada.sessionId!, '--reason', 'Suspicious activity'])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, `Terminated session ${ada.sessionId} of ada.\n`)
  t.match(await tab.type('session.terminated'), { reason: 'admin', message: 'Session terminated by administrator', note: 'Suspicious activity' })
  t.equal((await tab.closed).code, 4001)
  t.match((await ada.get('/api/session_state')).json(), { error: { code: 'SESSION_TERMINATED', reason: 'admin' } })

  const [audit] = await app.ctx.database.sql`select actor_user_id, data from audit_events where session_id = ${ada.sessionId!} and type = 'session.ended'`
  t.match(audit, { actor_user_id: await userId(app, 'admin'), data: { reason: 'admin', note: 'Suspicious activity' } }, 'audited with ADMIN_USERNAME as the actor')
  const job = await app.ctx.queues.all.sessionEnded.getJob(`ended-${ada.sessionId}`)
  t.match(job?.data, { sessionId: ada.sessionId, reason: 'admin' }, 'the session-ended job is enqueued (it releases the locks)')

  // Each run starts a process that loads the whole service: the independent ones run side by side.
  const [again, unknown, noReason, noId] = await Promise.all([
    cli(t, app, ['terminate', ada.sessionId!, '--reason', 'again']),
    cli(t, app, ['terminate', 'not-a-session', '--reason', 'x']),
    cli(t, app, ['terminate', ada.sessionId!]),
    cli(t, app, ['terminate', '--reason', 'x']),
  ])
  t.equal(again.code, 1)
  t.match(oneLine(t, again.stderr), `tessera: session ${ada.sessionId} has already ended`)
  // A malformed id is a usage error, as HTTP answers it 400; an unknown one is 404's exit 1.
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, '"not-a-session" is not a session id: session ids are UUIDs')
  const missing = await cli(t, app, ['terminate', '00000000-0000-4000-8000-000000000000', '--reason', 'x'])
  t.equal(missing.code, 1)
  t.equal(oneLine(t, missing.stderr), 'tessera: no session has the id 00000000-0000-4000-8000-000000000000')
  t.equal(noReason.code, 2, 'a reason is required')
  t.match(noReason.stderr, /--reason "why" is required/)
  t.match(noReason.stderr, 'Usage: tessera terminate <sessionId> --reason TEXT')
  t.equal(noId.code, 2, 'the session id is required')
})

t.test('terminate --as records another admin as the actor, and refuses a non-admin', async (t) => {
  const app = await build(t)
  await app.user('ada')
  await app.user('ops', { role: 'admin' })
  const ada = await app.client().signIn('ada')

  const notAdmin = await cli(t, app, ['terminate', ada.sessionId!, '--reason', 'x', '--as', 'ada'])
  t.equal(notAdmin.code, 1)
  t.match(oneLine(t, notAdmin.stderr), /--as ada: there is no admin account of that name/)
  t.equal((await ada.get('/api/session_state')).statusCode, 200, 'the session lives on')

  const r = await cli(t, app, ['terminate', ada.sessionId!, '--reason', 'Left the company', '--as', 'ops'])
  t.equal(r.code, 0, r.stderr)
  const [audit] = await app.ctx.database.sql`select actor_user_id from audit_events where session_id = ${ada.sessionId!} and type = 'session.ended'`
  t.equal(audit!.actor_user_id, await userId(app, 'ops'))
})

t.test('sessions lists the live sessions as a table or as JSON', async (t) => {
  const app = await build(t)
  await app.user('ada', { role: 'reviewer' })
  const address = await listen(app)
  const ada = await app.client().signIn('ada')
  await openTab(address, ada.sid!, { tabId: 'A', view: '/inbox' })
  const other = await app.client().signIn('ada')

  const r = await cli(t, app, ['sessions'])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  const header = lines[0]!
  t.match(header, /^ID +USER +ROLE +STATUS +LAST ACTIVITY +VIEW +IP +DEVICE +TABS +PLATFORM$/)
  const row = lines.find((l) => l.startsWith(ada.sessionId!))
  t.ok(row, 'the session with a tab is listed')
  t.ok(
    lines.some((l) => l.startsWith(other.sessionId!)),
    'and the other one',
  )
  const at = (column: string) => row!.slice(header.indexOf(column)).split(/ {2,}/)[0]
  t.equal(at('USER'), 'ada', 'columns are aligned under their headers')
  t.equal(at('ROLE'), 'reviewer')
  t.equal(at('STATUS'), 'active')
  t.match(at('LAST ACTIVITY'), /^(just now|\d+s ago)$/, 'relative time (a busy machine may take seconds to get here)')
  t.equal(at('VIEW'), '/inbox')
  t.equal(at('IP'), '127.0.0.1')
  t.match(at('DEVICE'), /Chrome/)
  t.match(row!.slice(header.indexOf('TABS')), /^ {3}1 /, 'numbers are aligned right')
  t.match(r.stdout, /\n2 sessions\n$/)

  const json = await cli(t, app, ['sessions', '--json', '--limit', '1'])
  t.equal(json.code, 0, json.stderr)
  const body = JSON.parse(json.stdout)
  t.equal(body.total, 2)
  t.equal(body.items.length, 1, '--limit')
  t.match(body.items[0], { username: 'ada', role: 'reviewer', status: 'active', ip: '127.0.0.1', device: { browser: String } })

  const [limited, filtered, none] = await Promise.all([
    cli(t, app, ['sessions', '--limit', '1']),
    cli(t, app, ['sessions', '--user', 'ADA', '--role', 'reviewer', '--status', 'active', '--json']),
    cli(t, app, ['sessions', '--status', 'idle']),
  ])
  t.match(limited.stdout, /\n1 of 2 sessions/)
  t.equal(JSON.parse(filtered.stdout).total, 2, 'filters as GET /admin/sessions does (names match case-insensitively)')
  t.equal(none.stdout, 'No live session matches.\n')

  const bad = [['--status', 'asleep'], ['--role', 'king'], ['--limit', '0'], ['--limit', 'ten'], ['--bogus'], ['extra']]
  for (const [i, res] of (await Promise.all(bad.map((args) => cli(t, null, ['sessions', ...args])))).entries()) {
    t.equal(res.code, 2, bad[i]!.join(' '))
    t.match(res.stderr, 'Usage: tessera sessions', bad[i]!.join(' '))
  }
})

t.test('unlock lets a user locked by failed sign-ins sign in again, audited with the actor', async (t) => {
  const app = await build(t, { FAILED_LOGIN_THRESHOLD: '2' })
  const { id } = await app.user('ada')
  const browser = app.client()
  t.equal((await browser.login('ada', 'wrong-password-x')).statusCode, 401)
  t.equal((await browser.login('ada', 'wrong-password-x')).statusCode, 423, 'the second failure locks')
  t.equal((await browser.login('ada', PASSWORD)).statusCode, 423, 'even the right password is refused while locked')

  const r = await cli(t, app, ['unlock', 'ada'])
  t.equal(r.code, 0, r.stderr)
  t.equal(r.stdout, 'Unlocked ada: they can sign in again.\n')
  t.equal((await browser.login('ada', PASSWORD)).statusCode, 200, 'she can sign in again')
  const audit = await app.ctx.database.sql`select actor_user_id from audit_events where type = 'user.unlocked' and user_id = ${id}`
  t.same(
    audit.map((a) => a.actor_user_id),
    [await userId(app, 'admin')],
  )

  const nobody = await cli(t, app, ['unlock', 'nobody'])
  t.equal(nobody.code, 1)
  t.match(oneLine(t, nobody.stderr), /no user is named "nobody"/)
})

t.test('create-admin makes an admin who signs in with the password printed once', async (t) => {
  const app = await build(t)
  const r = await cli(t, app, ['create-admin', 'ops', '--email', 'ops@example.com'])
  t.equal(r.code, 0, r.stderr)
  const password = /^Password: (\S+)$/m.exec(r.stdout)?.[1]
  t.ok(password, r.stdout)
  const ops = await app.client().signIn('ops', password!)
  t.equal((await ops.get('/admin/users')).statusCode, 200, 'as an admin')
  const [row] = await app.ctx.database.sql`select id, role, email from users where username = 'ops'`
  t.match(row, { role: 'admin', email: 'ops@example.com' })
  const [audit] = await app.ctx.database.sql`select actor_user_id, data from audit_events where type = 'user.created' and user_id = ${row!.id as number}`
  t.match(audit, { actor_user_id: await userId(app, 'admin'), data: { username: 'ops', role: 'admin' } })

  const [taken, weak, given, badName, badEmail] = await Promise.all([
    cli(t, app, ['create-admin', 'OPS']),
    cli(t, app, ['create-admin', 'ops2', '--password-stdin'], { input: 'short\n' }),
    cli(t, app, ['create-admin', 'ops3', '--password-stdin'], { input: 'a-long-enough-password\n' }),
    cli(t, null, ['create-admin', 'two words']),
    cli(t, null, ['create-admin', 'ops4', '--email', 'nope']),
  ])
  t.equal(taken.code, 1, 'a taken name (in any case)')
  t.equal(oneLine(t, taken.stderr), 'tessera: The username OPS is taken.')
  t.equal(weak.code, 1, 'a weak password')
  t.equal(oneLine(t, weak.stderr), 'tessera: The password needs at least 10 characters.')
  t.equal(given.code, 0, given.stderr)
  t.notMatch(given.stdout, 'Password:', 'a password from stdin is not echoed')
  await app.client().signIn('ops3', 'a-long-enough-password')
  t.equal(badName.code, 2)
  t.equal(badEmail.code, 2)
  t.equal((await app.ctx.database.sql`select 1 from users where username in ('ops2', 'ops4')`).length, 0, 'refused accounts were not made')
})

t.test('an unreachable Redis is one line and exit 1, as for the service', async (t) => {
  const app = await build(t)
  const r = await cli(t, app, ['sessions'], { env: { REDIS_URL: 'redis://127.0.0.1:1' } })
  t.equal(r.code, 1)
  t.match(oneLine(t, r.stderr), /^tessera: Redis is not reachable at redis:\/\/127\.0\.0\.1:1.* Start it with: /)
  t.equal(r.stdout, '')
})

t.test('help, no command and an unknown command print the usage on stdout', async (t) => {
  const overviews = [['help'], [], ['--help']]
  for (const [i, r] of (await Promise.all(overviews.map((args) => cli(t, null, args)))).entries()) {
    const args = overviews[i]!
    t.equal(r.code, 0, `tessera ${args.join(' ')}`)
    t.match(r.stdout, /^Usage: tessera <command>/)
    for (const name of ['sessions', 'terminate', 'unlock', 'create-admin']) t.match(r.stdout, `  ${name} `)
  }
  const unknown = await cli(t, null, ['frobnicate'])
  t.equal(unknown.code, 2)
  t.match(unknown.stdout, /^Usage: tessera <command>/)
  t.equal(unknown.stderr, 'tessera: unknown command "frobnicate"\n')

  const one = await cli(t, null, ['help', 'terminate'])
  t.equal(one.code, 0)
  t.match(one.stdout, /^Usage: tessera terminate <sessionId> --reason TEXT/)
  t.equal((await cli(t, null, ['unlock', '--help'])).stdout.split('\n')[0], 'Usage: tessera unlock <username> [--as NAME]')
})

t.test('table cells: relative times, and user text that cannot drive the terminal', async (t) => {
  const now = Date.parse('2030-01-02T12:00:00Z')
  const ago = (ms: number) => relativeTime(new Date(now - ms).toISOString(), now)
  t.equal(ago(-3000), 'just now', 'a clock a little ahead')
  t.equal(ago(4000), 'just now')
  t.equal(ago(42_000), '42s ago')
  t.equal(ago(23 * 60_000 + 5000), '23m ago')
  t.equal(ago(5 * 3_600_000 + 7 * 60_000), '5h 7m ago')
  t.equal(ago(3 * 86_400_000 + 2 * 3_600_000), '3d 2h ago')
  t.equal(cell('/inbox\u001b[2J\u0007'), '/inbox?[2J?', 'escape sequences are defused')
  t.equal(cell(null), '-')
  t.equal(cell('x'.repeat(50)), `${'x'.repeat(39)}…`)
})

t.test('the CLI never creates or migrates a database: a mistyped DATABASE_URL is one line naming it', async (t) => {
  const app = await build(t)
  const typo = new URL(app.databaseUrl)
  typo.pathname = `${typo.pathname}_typo`
  const r = await cli(t, app, ['sessions'], { env: { DATABASE_URL: typo.toString() } })
  t.equal(r.code, 1)
  t.match(oneLine(t, r.stderr), /database "tessera_test_\w+_typo" does not exist\. Check DATABASE_URL/)
  t.notMatch(r.stderr, /First admin created/, 'no admin password is printed')
  const made = await app.ctx.database.sql`select 1 from pg_database where datname = ${typo.pathname.slice(1)}`
  t.equal(made.length, 0, 'no database was created')

  // A database that exists but was never set up is not migrated either.
  const empty = new URL(app.databaseUrl)
  empty.pathname = `${empty.pathname}_empty`
  await app.ctx.database.sql.unsafe(`create database "${empty.pathname.slice(1)}"`)
  t.teardown(() => app.ctx.database.sql.unsafe(`drop database if exists "${empty.pathname.slice(1)}" with (force)`))
  const bare = await cli(t, app, ['sessions'], { env: { DATABASE_URL: empty.toString() } })
  t.equal(bare.code, 1)
  t.match(oneLine(t, bare.stderr), /has no Tessera tables\. Start the service once/)
})
