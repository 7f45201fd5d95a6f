// The lingering close on a refused upload is bounded: a client that keeps trickling its body
// does not hold the connection open past the linger time, nor the server at shutdown.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { LingeringBodies } from '../../src/uploads/linger.js'

t.test('a body still arriving after the linger time has its connection closed', async (t) => {
  const lingering = new LingeringBodies(300)
  const socket = tricklingClient(t, await refusingServer(t, lingering))
  let answer = ''
  socket.on('data', (chunk) => (answer += chunk))
  await closeOf(socket)
  t.match(answer, /^HTTP\/1\.1 413 /, 'the answer arrived before the close')
})

t.test('a body that ends within the linger time leaves the connection open for the next request', async (t) => {
  let requests = 0
  const lingering = new LingeringBodies(5_000)
  const server = createServer((req, res) => {
    requests++
    res.writeHead(413, { 'content-length': '0' }).end()
    lingering.discardRest(req)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  const body = Buffer.alloc(2_000_000, 'x')
  socket.write(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${body.length}\r\n\r\n`)
  socket.write(body)
  socket.write('GET / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n')
  let answers = ''
  socket.on('data', (chunk) => (answers += chunk))
  while ((answers.match(/HTTP\/1\.1 413/g) ?? []).length < 2) await once(socket, 'data')
  t.equal(requests, 2, 'both requests were answered on one connection')
})

t.test('at shutdown a lingering body is closed at once, not after its linger', async (t) => {
  // A linger longer than the test's timeout: only closeAll can end it in time.
  const lingering = new LingeringBodies(10 * 60_000)
  let refused!: () => void
  const answered = new Promise<void>((resolve) => (refused = resolve))
  const socket = tricklingClient(t, await refusingServer(t, lingering, refused))
  await answered
  const closed = closeOf(socket)
  lingering.closeAll()
  await closed
  t.pass('the connection closed')
})

/** Resolves when `socket` closes (events.once would reject on the EPIPE of a trickled byte meeting the close). */
function closeOf(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.once('close', () => resolve()))
}

/** A server that refuses every request with 413 and lingers on its body; its port. */
async function refusingServer(t: { teardown(fn: () => unknown): void }, lingering: LingeringBodies, refused = () => {}): Promise<number> {
  const server = createServer((req, res) => {
    res.writeHead(413, { 'content-length': '0' }).end()
    lingering.discardRest(req)
    refused()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  return (server.address() as { port: number }).port
}

/** A client that announces a 1 MB body and sends it a byte every 50 ms. */
function tricklingClient(t: { teardown(fn: () => unknown): void }, port: number): Socket {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n')
  const trickle = setInterval(() => socket.write('x'), 50)
  t.teardown(() => clearInterval(trickle))
  return socket
}
