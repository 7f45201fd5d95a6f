// A 50 MB upload against a real server over a real socket: refused with 413 once it passes
// UPLOAD_MAX_BYTES, without being held in memory, leaving no file; the connection closes
// after the answer, so the rest is never read.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { build } from '../helpers/app.js'
import { multipartBody, samplePdf, streamedMultipart } from '../helpers/multipart.js'
import { listen } from '../helpers/ws.js'

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36'

t.test('a 50 MB upload is refused with 413 while it streams: memory stays flat and no file is left', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-uploads-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const app = await build(t, { UPLOAD_DIR: dir })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const address = await listen(app)
  const size = 50 * 1024 * 1024
  const { body, contentType, length } = streamedMultipart({ filename: 'huge.pdf' }, Buffer.from('%PDF-1.7\n'), size)
  global.gc?.()
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const [host, port] = address.split(':')
    const req = request(
      {
        host,
        port,
        method: 'POST',
        path: '/api/session/uploads',
        headers: { 'content-type': contentType, 'content-length': length, cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'user-agent': UA },
      },
      (res) => {
        let text = ''
        res.on('data', (c) => (text += c))
        res.on('end', () => resolve({ status: res.statusCode!, body: text }))
      },
    )
    // The server closes the connection after its answer: writing the rest then fails, as it should.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err)
    })
    body.pipe(req)
  })
  clearInterval(sampler)
  t.equal(answer.status, 413)
  t.match(JSON.parse(answer.body), { error: { code: 'FILE_TOO_LARGE', message: /larger than 5 MB/ } })
  const grew = (peak - before) / 1_048_576
  t.comment(`RSS grew by ${grew.toFixed(1)} MiB while a 50 MiB upload was refused`)
  t.ok(grew < 25, 'the upload was not held in memory')
  const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())
  t.same(files, [], 'no file, not even a partial one')
  t.equal((await app.resources.database.sql`select count(*)::int as n from uploads`)[0]!.n, 0)
  const { payload, contentType: small } = multipartBody({ filename: 'small.pdf' }, samplePdf())
  const next = await app.app.inject({
    method: 'POST',
    url: '/api/session/uploads',
    payload,
    headers: { 'content-type': small, cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'user-agent': UA },
  })
  t.equal(next.statusCode, 201, 'the next upload works')
})
