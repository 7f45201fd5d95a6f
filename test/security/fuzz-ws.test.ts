// S7, WebSocket: every client message type fed generated messages (fitting and wrong
// fields, NUL and unpaired surrogates, unsafe integers, random JSON, truncated text, binary
// frames) is answered (the reply, or `error` BAD_MESSAGE / FORBIDDEN) and the socket stays
// open: never a 1011, never a hang. Oversized frames close with 1009, floods of bad messages
// with 4400, and a canary tab of another session keeps its events throughout. A failure
// prints fast-check's seed and path; replay with FUZZ_SEED=<seed> (FUZZ_RUNS: cases per type).
import fc from 'fast-check'
import t, { type Test } from 'tap'
import { ClientMessage } from '../../src/realtime/messages.js'
import { CLIENT_MESSAGES } from '../../src/realtime/protocol.js'
import { ADMIN_PASSWORD, build, type Client, type TestApp } from '../helpers/app.js'
import { connect, listen, type Message, openTab, type TabClient } from '../helpers/ws.js'
import { anyJson, fromSchema } from './fuzz-arbitraries.js'

t.setTimeout(900_000)
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined
const HANG_MS = 10_000

/** A frame: mostly a message of `type` shaped by its schema; sometimes broken text or binary. */
type Frame = { text?: string; binary?: Uint8Array }

function frames(type: string): fc.Arbitrary<Frame> {
  const schema = ClientMessage[type as keyof typeof ClientMessage] as object
  const message = fromSchema(schema).map((m) => (typeof m === 'object' && m !== null && !Array.isArray(m) ? { ...m, type } : m))
  const any: fc.Arbitrary<Frame> = fc.oneof(
    { weight: 12, arbitrary: message.map((m) => ({ text: JSON.stringify(m) ?? 'null' })) },
    { weight: 1, arbitrary: anyJson.map((m) => ({ text: JSON.stringify(m) ?? 'null' })) },
    { weight: 1, arbitrary: message.chain((m) => { const text = JSON.stringify(m) ?? 'null'; return fc.nat({ max: Math.max(0, text.length - 1) }).map((n) => ({ text: text.slice(0, n) })) }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((text) => ({ text })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((binary) => ({ binary })) },
    // Frames over WS_MAX_PAYLOAD_BYTES close the socket with 1009: the test below shows that.
  )
  return any.filter((f) => f.binary !== undefined || Buffer.byteLength(f.text!) <= 16_000)
}

/** Waits for the first message after `from` that matches, failing on a close or after HANG_MS. */
async function answer(tab: TabClient, from: number, match: (m: Message) => boolean, what: string): Promise<Message> {
  const closed = tab.closed.then(({ code, reason }) => {
    throw new Error(`socket closed ${code} (${reason}) after ${what}`)
  })
  closed.catch(() => {})
  return Promise.race([tab.next(match, HANG_MS, from), closed])
}

async function canaryOf(app: TestApp, address: string) {
  const user = await app.user('canary', { platforms: ['One', 'Two'] })
  const client = await app.client().signIn('canary')
  const { tab } = await openTab(address, client.sid!, { tabId: 'canary' })
  let flips = 0
  return {
    tab,
    /** The canary switches platform over HTTP and its tab must get the event. */
    async hears(t: Test, after: string) {
      const target = user.platformIds[++flips % 2]!
      const from = tab.messages.length
      t.equal((await client.post(`/api/switch_platform/${target}`)).statusCode, 200, `after ${after}: the canary can still switch`)
      const event = await tab.next((m) => m.type === 'platform.switched', 5000, from)
      t.equal((event.platform as { id: number }).id, target, `after ${after}: the canary tab got its event`)
    },
  }
}

t.test('every client message type answers generated messages and keeps the socket open; the canary keeps its events', async (t) => {
  const app = await build(t, { WS_MAX_BAD_MESSAGES: '10000', API_RATE_LIMIT: '10000000/min' })
  const address = await listen(app)
  const canary = await canaryOf(app, address)
  await app.user('ada', { platforms: ['Home'] })
  const clients: Record<string, Client> = { user: await app.client().signIn('ada'), admin: await app.client().signIn('admin', ADMIN_PASSWORD) }
  await canary.hears(t, 'start')

  for (const type of CLIENT_MESSAGES) {
    const who = type.startsWith('admin.') ? 'admin' : 'user'
    const sid = clients[who]!.sid!
    let tab: TabClient | undefined
    const replies = new Map<string, number>()
    let n = 0
    await fc.assert(
      fc.asyncProperty(frames(type), async (frame) => {
        const id = `probe-${++n}`
        const what = `${type} frame ${frame.text !== undefined ? JSON.stringify(frame.text.slice(0, 300)) : `binary ${frame.binary!.length} bytes`}`
        if (type === 'hello') {
          // A hello is the first message of a socket: each case gets a fresh one.
          const fresh = await connect(address, { cookie: `sid=${sid}` })
          try {
            fresh.ws.send(frame.binary ?? frame.text!, { binary: frame.binary !== undefined })
            const reply = await answer(fresh, 0, (m) => m.type === 'welcome' || m.type === 'error', what)
            replies.set(String(reply.code ?? reply.type), (replies.get(String(reply.code ?? reply.type)) ?? 0) + 1)
            if (reply.type === 'error' && reply.code !== 'BAD_MESSAGE') throw new Error(`error ${reply.code} for ${what}`)
          } finally {
            await fresh.close()
          }
          return
        }
        tab ??= (await openTab(address, sid, { tabId: `fuzz-${type}` })).tab
        const from = tab.messages.length
        tab.ws.send(frame.binary ?? frame.text!, { binary: frame.binary !== undefined })
        // Messages are handled in order: the pong of a ping sent after it says it was handled.
        tab.send({ type: 'ping', id })
        await answer(tab, from, (m) => m.type === 'pong' && m.id === id, what)
        for (const m of tab.messages.slice(from)) {
          if (m.type === 'error') {
            replies.set(String(m.code), (replies.get(String(m.code)) ?? 0) + 1)
            if (m.code !== 'BAD_MESSAGE' && m.code !== 'FORBIDDEN') throw new Error(`error ${m.code} (${m.message}) for ${what}`)
          }
        }
      }),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
    )
    t.ok(n >= RUNS, `${type}: ${n} frames, error replies ${JSON.stringify(Object.fromEntries(replies))}`)
    if (tab) {
      t.equal(tab.ws.readyState, tab.ws.OPEN, `${type}: the fuzzed socket is still open`)
      await tab.close()
    }
    await canary.hears(t, type)
  }
  t.equal((await app.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the process is still up')
  await canary.tab.close()
})

t.test('oversized frames close with 1009, floods of bad messages with 4400, floods of pings are all answered; the canary is unaffected', async (t) => {
  const app = await build(t)
  const address = await listen(app)
  const canary = await canaryOf(app, address)
  await app.user('ada')
  const ada = await app.client().signIn('ada')

  const { tab: big } = await openTab(address, ada.sid!, { tabId: 'big' })
  big.send({ type: 'view', view: 'x'.repeat(20_000) })
  t.equal((await big.closed).code, 1009, 'a frame over WS_MAX_PAYLOAD_BYTES closes 1009')
  await canary.hears(t, 'an oversized frame')

  const { tab: bad } = await openTab(address, ada.sid!, { tabId: 'bad' })
  for (let i = 0; i < 200; i++) bad.send(i % 2 ? '{"type":"view","view":"\\u0000"}' : 'not json')
  t.equal((await bad.closed).code, 4400, 'a flood of bad messages closes 4400 (WS_MAX_BAD_MESSAGES)')
  t.equal(bad.messages.filter((m) => m.code === 'BAD_MESSAGE').length, 10, 'each bad message up to the limit was answered')
  await canary.hears(t, 'a flood of bad messages')

  const { tab: pings } = await openTab(address, ada.sid!, { tabId: 'pings' })
  for (let i = 0; i < 2000; i++) pings.send({ type: 'ping', id: i })
  await pings.next((m) => m.type === 'pong' && m.id === 1999, 20_000)
  t.equal(pings.messages.filter((m) => m.type === 'pong').length, 2000, 'every ping of a flood is answered, in order')
  t.equal(pings.ws.readyState, pings.ws.OPEN, 'and the socket stays open')
  await canary.hears(t, 'a flood of pings')
  await pings.close()
  await canary.tab.close()
})
