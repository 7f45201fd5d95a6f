// Session-scoped uploads against a real server, PostgreSQL and the local storage driver:
// PDF by content, safe names, one session's files hidden from others, audit, and removal
// after the retention (the size limit has a file of its own: large-upload.test.ts).
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { build, type Client, type TestApp } from '../helpers/app.js'
import { multipartBody, samplePdf } from '../helpers/multipart.js'

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36'

async function uploadDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-uploads-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function upload(app: TestApp, client: Client, filename: string, content: Buffer, field = 'file') {
  const { payload, contentType } = multipartBody({ filename, field }, content)
  return app.app.inject({
    method: 'POST',
    url: '/api/session/uploads',
    payload,
    headers: { 'content-type': contentType, cookie: `sid=${client.sid}`, 'x-csrf-token': client.csrf!, 'user-agent': UA },
  })
}

/** Every file under `dir`, as paths relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
}

t.test('a PDF is recognised by its bytes, not its name or declared type', async (t) => {
  const dir = await uploadDir(t)
  const app = await build(t, { UPLOAD_DIR: dir })
  await app.user('ada')
  const ada = await app.client().signIn('ada')

  const fake = await upload(app, ada, 'invoice.pdf', Buffer.from('<html>not a pdf at all</html>'))
  t.equal(fake.statusCode, 415)
  t.match(fake.json(), { error: { code: 'UNSUPPORTED_FILE_TYPE', message: /^PDF files only/ } })

  const real = await upload(app, ada, 'report', samplePdf())
  t.equal(real.statusCode, 201, 'a PDF without the extension is accepted')
  const body = real.json()
  t.match(body, { name: 'report', size: samplePdf().length, contentType: 'application/pdf' })
  t.match(body.key, new RegExp(`^uploads/${ada.sessionId}/[0-9a-f-]{36}-report$`), 'stored under the session’s folder')
  t.same(await filesUnder(dir), [body.key], 'one file, the PDF; the refused one left nothing')
  t.same(await readFile(join(dir, body.key)), samplePdf(), 'stored as sent')

  const listed = (await ada.get('/api/session/uploads')).json().items
  t.match(listed, [{ id: body.id, key: body.key, name: 'report' }])
  const audit = await app.resources.database.sql`select data from audit_events where type = 'upload.stored' and session_id = ${ada.sessionId!}`
  t.match(audit, [{ data: { key: body.key, name: 'report', size: samplePdf().length } }], 'audited')
})

t.test('bad requests: no file, another field, no multipart', async (t) => {
  const app = await build(t, { UPLOAD_DIR: await uploadDir(t) })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const other = await upload(app, ada, 'a.pdf', samplePdf(), 'document')
  t.equal(other.statusCode, 400)
  t.match(other.json(), { error: { code: 'VALIDATION_FAILED', message: /body\.document/ } })
  const json = await ada.post('/api/session/uploads', { file: 'x' })
  t.equal(json.statusCode, 400)
  t.equal(json.json().error.code, 'VALIDATION_FAILED')
  const anonymous = await app.app.inject({ method: 'GET', url: '/api/session/uploads' })
  t.equal(anonymous.statusCode, 401)
})

t.test('names that try to leave the folder are stored inside it, made safe', async (t) => {
  const dir = await uploadDir(t)
  const app = await build(t, { UPLOAD_DIR: join(dir, 'store') })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  for (const [name, safe] of [
    ['../../etc/passwd', 'passwd'],
    ['..\\\\x.pdf', 'x.pdf'],
    ['.hidden.pdf', 'hidden.pdf'],
    ['r\u00e9sum\u00e9 (final).pdf', 'r\u00e9sum\u00e9 _final_.pdf'],
  ] as const) {
    const res = await upload(app, ada, name, samplePdf())
    t.equal(res.statusCode, 201, name)
    t.equal(res.json().name, safe, `${name} → ${safe}`)
    t.match(res.json().key, new RegExp(`^uploads/${ada.sessionId}/[0-9a-f-]{36}-`))
  }
  const nameless = await upload(app, ada, '..', samplePdf())
  t.equal(nameless.statusCode, 400, 'a name that is no name at all is refused')
  t.match(nameless.json(), { error: { code: 'VALIDATION_FAILED', message: /body\.file/ } })
  t.same(await readdir(dir), ['store'], 'nothing was written beside the upload folder')
  t.equal((await filesUnder(join(dir, 'store'))).length, 4)
})

t.test("another session can neither list nor fetch a session's files", async (t) => {
  const app = await build(t, { UPLOAD_DIR: await uploadDir(t) })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const laptop = await app.client().signIn('ada')
  const stored = (await upload(app, ada, 'mine.pdf', samplePdf('mine'))).json()
  const own = await ada.get(`/api/session/uploads/${stored.id}`)
  t.equal(own.statusCode, 200)
  t.equal(own.headers['content-type'], 'application/pdf')
  t.same(own.rawPayload, samplePdf('mine'))
  t.same((await laptop.get('/api/session/uploads')).json().items, [], 'the same user on another device lists nothing')
  const theirs = await laptop.get(`/api/session/uploads/${stored.id}`)
  t.equal(theirs.statusCode, 404)
  t.equal(theirs.json().error.code, 'UPLOAD_NOT_FOUND')
})

t.test('the cleanup removes the files of sessions that ended longer ago than the retention', async (t) => {
  const dir = await uploadDir(t)
  const app = await build(t, { UPLOAD_DIR: dir, UPLOAD_RETENTION_DAYS: '7' })
  await app.user('ada')
  const old = await app.client().signIn('ada')
  const recent = await app.client().signIn('ada')
  const live = await app.client().signIn('ada')
  const files = {
    old: (await upload(app, old, 'old.pdf', samplePdf())).json(),
    recent: (await upload(app, recent, 'recent.pdf', samplePdf())).json(),
    live: (await upload(app, live, 'live.pdf', samplePdf())).json(),
  }
  await old.post('/api/auth/logout')
  await recent.post('/api/auth/logout')
  const { sql } = app.resources.database
  await sql`update sessions set ended_at = now() - interval '8 days' where id = ${old.sessionId!}`
  await sql`update sessions set ended_at = now() - interval '6 days' where id = ${recent.sessionId!}`
  t.equal(await app.ctx.uploads.purgeEnded(7, 10), 1, 'one file past the retention')
  t.notOk(existsSync(join(dir, files.old.key)), 'its file is gone')
  t.notOk(existsSync(join(dir, files.old.key, '..')), 'and its session folder')
  t.ok(existsSync(join(dir, files.recent.key)), 'an ended session within the retention keeps its files')
  t.ok(existsSync(join(dir, files.live.key)), 'a live session keeps its files')
  t.same((await sql`select name from uploads order by name`).map((r) => r.name), ['live.pdf', 'recent.pdf'])
})
