// A 50 MB upload against a real server over a real socket: refused with 413 once it passes
// UPLOAD_MAX_BYTES, without being held in memory, leaving no file. The rest of the body is
// read and dropped, so the client always gets the answer instead of a reset connection.
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ARRIVAL_LIMITS } from '../../src/infra/pre-route.js'
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
  // A raw socket, as a browser's: it keeps sending after the answer (Node's own client stops).
  const [host, port] = address.split(':')
  const socket = connect(Number(port), host)
  t.teardown(() => socket.destroy())
  const head = uploadHead(address, contentType, length, ada)
  socket.write(`${head}\r\n\r\n`)
  const sent = new Promise<void>((resolve, reject) => {
    socket.on('error', reject)
    body.on('end', () => socket.write('', () => resolve()))
    body.pipe(socket, { end: false })
  })
  const answer = await responseOn(socket)
  clearInterval(sampler)
  t.equal(answer.status, 413)
  await t.resolves(sent, 'the client sends the rest without a reset: the server reads and drops it')
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

t.test('an upload that stops arriving halfway is answered 408 and leaves no file; the next upload works', async (t) => {
  const before = ARRIVAL_LIMITS.bodySilenceMs
  ARRIVAL_LIMITS.bodySilenceMs = 500
  t.teardown(() => {
    ARRIVAL_LIMITS.bodySilenceMs = before
  })
  const dir = await mkdtemp(join(tmpdir(), 'tessera-uploads-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const app = await build(t, { UPLOAD_DIR: dir })
  await app.user('ada')
  const ada = await app.client().signIn('ada')
  const address = await listen(app)
  const { payload, contentType } = multipartBody({ filename: 'cut.pdf' }, samplePdf())
  const [host, port] = address.split(':')
  const socket = connect(Number(port), host)
  t.teardown(() => socket.destroy())
  const head = uploadHead(address, contentType, payload.length, ada)
  // Half the file, then nothing: the network went away without closing the connection.
  socket.write(`${head}\r\n\r\n`)
  socket.write(payload.subarray(0, payload.length / 2))
  const answer = await responseOn(socket)
  t.equal(answer.status, 408)
  t.match(JSON.parse(answer.body), { error: { code: 'REQUEST_TIMEOUT' } })
  const filesIn = () => filesUnder(dir)
  // The partial file goes once the route's stream learns the connection is gone.
  for (let i = 0; i < 50 && (await filesIn()).length > 0; i++) await new Promise((r) => setTimeout(r, 100))
  t.same(await filesIn(), [], 'no file, not even a partial one')
  t.equal((await app.resources.database.sql`select count(*)::int as n from uploads`)[0]!.n, 0)
  const next = await app.app.inject({
    method: 'POST',
    url: '/api/session/uploads',
    payload,
    headers: { 'content-type': contentType, cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'user-agent': UA },
  })
  t.equal(next.statusCode, 201, 'the next upload works')
})

t.test('a client that goes away halfway through an upload leaves no file, and is not logged as an outage', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-uploads-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const base = await build(t, { UPLOAD_DIR: dir })
  const lines: string[] = []
  const node = await base.node({ config: { ...base.ctx.config, logLevel: 'info' }, logStream: { write: (line) => lines.push(line) } })
  await base.user('ada')
  const ada = await base.client().signIn('ada')
  const address = await listen(node)
  const { payload, contentType } = multipartBody({ filename: 'gone.pdf' }, samplePdf())
  const [host, port] = address.split(':')
  const socket = connect(Number(port), host)
  const head = uploadHead(address, contentType, payload.length, ada)
  socket.write(`${head}\r\n\r\n`)
  socket.write(payload.subarray(0, payload.length / 2))
  // Gone once the route has begun to store the file.
  const filesIn = () => filesUnder(dir)
  for (let i = 0; i < 50 && (await filesIn()).length === 0; i++) await new Promise((r) => setTimeout(r, 100))
  socket.destroy()
  for (let i = 0; i < 50 && !lines.some((l) => l.includes('went away')); i++) await new Promise((r) => setTimeout(r, 100))
  t.same(await filesIn(), [], 'no file, not even a partial one')
  const said = lines.map((l) => JSON.parse(l) as { level: number; msg: string })
  t.ok(said.some((l) => l.msg.includes('the client went away')), 'logged as the client going away')
  t.notOk(said.some((l) => l.level >= 40), `no warning or error (got: ${said.filter((l) => l.level >= 40).map((l) => l.msg).join('; ')})`)
})

/** The request line and headers of an upload of `length` bytes by a signed-in client, as a browser sends them. */
function uploadHead(address: string, contentType: string, length: number, client: { sid?: string; csrf?: string }): string {
  return [
    'POST /api/session/uploads HTTP/1.1',
    `host: ${address}`,
    `content-type: ${contentType}`,
    `content-length: ${length}`,
    `cookie: sid=${client.sid}`,
    `x-csrf-token: ${client.csrf}`,
    `user-agent: ${UA}`,
  ].join('\r\n')
}

/** The names of the files under `dir`, at any depth. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name)
}

/** The first HTTP/1.1 answer on `socket` (a body with content-length, as Fastify sends errors). */
function responseOn(socket: Socket): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0)
    socket.on('close', () => reject(new Error('the connection closed before a whole answer')))
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const end = received.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = received.subarray(0, end).toString()
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN)
      const body = received.subarray(end + 4)
      if (body.length < length) return
      resolve({ status: Number(head.split(' ')[1]), body: body.subarray(0, length).toString() })
    })
  })
}
