// S7, HTTP (run by fuzz-http-api, fuzz-http-api-more and fuzz-http-admin.test.ts, a third
// of the routes each, so that the files can run side by side): every route of the OpenAPI
// document fed generated requests (fitting and broken
// path parameters, queries, bodies, content types, huge and deeply nested JSON, wrong or
// missing CSRF tokens and origins) answers within seconds with a 2xx, or a 4xx in the
// contract's error shape: never a 5xx, never a hang. A canary tab of another session keeps
// receiving its events after every route. A failure prints fast-check's seed and path;
// replay it with FUZZ_SEED=<seed> (FUZZ_RUNS sets the cases per route, 1,000 by default).
import fc from 'fast-check'
import type { Test } from 'tap'
import { build, type Client } from '../helpers/app.js'
import { listen, openTab } from '../helpers/ws.js'
import { type FuzzBody, pathSegment, queryString, requestBody } from './fuzz-arbitraries.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined
/** An answer slower than this is a hang (the slowest honest case, a 64 KiB body, takes milliseconds). */
const HANG_MS = 15_000
const CONCURRENCY = 8

export interface Operation {
  method: string
  path: string
  parameters?: { in: string; name: string; schema?: object }[]
  requestBody?: { content?: Record<string, { schema?: object }> }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

/** The operations, authentication and own-session routes: one of the three fuzz files. */
export const inFirstApiHalf = (path: string) => !path.startsWith('/admin') && /^\/(healthz|readyz|metrics|api\/auth|api\/session\/(validate|cleanup|generate-uuid|validate-uuid)$|api\/session_state|api\/sessions)/.test(path)

/** Fuzzes the operations of the document that `pick` selects. */
export async function fuzzRoutes(t: Test, pick: (op: Operation) => boolean) {
  const app = await build(t, { API_RATE_LIMIT: '10000000/min', LOGIN_RATE_LIMIT: '10000000/min', UUID_RATE_LIMIT: '10000000/min' })
  const doc = (await app.app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as { paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>> }
  const all: Operation[] = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, ...op })))
  t.ok(all.length >= 40, `the document lists ${all.length} operations`)
  const operations = all.filter(pick)

  const canaryUser = await app.user('canary', { platforms: ['One', 'Two'] })
  const canary = await app.client().signIn('canary')
  const address = await listen(app)
  const { tab } = await openTab(address, canary.sid!, { tabId: 'canary' })
  let flips = 0
  let canaryTurn: Promise<void> = Promise.resolve()
  /** The canary switches platform over HTTP and its tab must get the event (one check at a time). */
  const canaryHears = (after: string) => {
    canaryTurn = canaryTurn.then(async () => {
      const target = canaryUser.platformIds[++flips % 2]!
      const from = tab.messages.length
      const res = await canary.post(`/api/switch_platform/${target}`)
      t.equal(res.statusCode, 200, `after ${after}: the canary can still switch`)
      const event = await tab.next((m) => m.type === 'platform.switched', 5000, from)
      t.equal((event.platform as { id: number }).id, target, `after ${after}: the canary tab got its event`)
    })
    return canaryTurn
  }
  await canaryHears('start')

  // A fuzzed admin that disables or changes the canary's own account ends its session for a
  // good reason (once seen: one fuzzed PATCH /admin/users/{id} answered 200, then the
  // canary's switch 401): the user routes never name it.
  const notCanary = (segment: string) => Number(segment.trim()) !== canaryUser.id

  let n = 0
  async function fuzz(op: Operation) {
    const i = ++n
    // Fresh accounts per route: a fuzzed logout, password change or disable ends only its own.
    await app.user(`fz${i}`, { platforms: ['P'] })
    await app.user(`fa${i}`, { role: 'admin' })
    const clients: Record<string, Client> = {
      user: await app.client().signIn(`fz${i}`),
      admin: await app.client().signIn(`fa${i}`),
      anon: app.client(),
    }
    const admin = op.path.startsWith('/admin')
    const params = op.parameters ?? []
    const pathParams = params.filter((p) => p.in === 'path')
    const bodySchema = op.requestBody?.content?.['application/json']?.schema
    const arbitrary = fc.record({
      // Mostly the caller the route is for, so that cases reach past the guards.
      who: fc.oneof({ weight: 16, arbitrary: fc.constant(admin ? 'admin' : 'user') }, { weight: 1, arbitrary: fc.constant(admin ? 'user' : 'admin') }, { weight: 1, arbitrary: fc.constant('anon') }),
      csrf: fc.oneof({ weight: 18, arbitrary: fc.constant('valid') }, { weight: 1, arbitrary: fc.constantFrom('missing', 'wrong') }),
      origin: fc.oneof({ weight: 18, arbitrary: fc.constantFrom(undefined, 'http://localhost:3000') }, { weight: 1, arbitrary: fc.constantFrom('https://evil.example', 'null') }),
      tabId: fc.option(fc.string({ unit: 'grapheme-ascii', maxLength: 80 }), { nil: undefined }),
      segments: fc.tuple(...pathParams.map((p) => (op.path.startsWith('/admin/users/') ? pathSegment(p.schema).filter(notCanary) : pathSegment(p.schema)))),
      query: queryString(params.filter((p) => p.in === 'query')),
      body: op.method === 'GET' ? fc.constant<FuzzBody>({}) : requestBody(bodySchema),
    })
    let seen = 0
    const started = Date.now()
    const statuses = new Map<number, number>()
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => {
        seen++
        let path = op.path
        pathParams.forEach((p, j) => {
          path = path.replace(`{${p.name}}`, c.segments[j]!)
        })
        const url = `${path}${c.query}`
        const client = clients[c.who]!
        const headers: Record<string, string> = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36' }
        if (client.sid) headers.cookie = `sid=${client.sid}`
        if (c.csrf === 'valid' && client.csrf) headers['x-csrf-token'] = client.csrf
        if (c.csrf === 'wrong') headers['x-csrf-token'] = 'A'.repeat(43)
        if (c.origin) headers.origin = c.origin
        if (c.tabId !== undefined) headers['x-tab-id'] = c.tabId
        if (c.body.contentType) headers['content-type'] = c.body.contentType
        const what = `${op.method} ${url.slice(0, 300)} body ${String(c.body.payload ?? '').slice(0, 300)}`
        const res = await withTimeout(
          app.app.inject({ method: op.method as 'GET', url, headers, ...(c.body.payload !== undefined ? { payload: c.body.payload } : {}) }),
          HANG_MS,
          what,
        )
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        // /readyz answers 503 when a check is slow or failing (http.md): its body names the check.
        const readiness = op.path === '/readyz' && res.statusCode === 503 && typeof res.json().checks === 'object'
        if (res.statusCode >= 500 && !readiness) throw new Error(`${res.statusCode} for ${what}: ${res.body.slice(0, 500)}`)
        if (res.statusCode >= 400 && !readiness) {
          const body = res.json() as { error?: { code?: unknown; message?: unknown } }
          if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string') throw new Error(`${res.statusCode} not in the error shape for ${what}: ${res.body.slice(0, 300)}`)
        }
      }),
      { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
    )
    t.ok(seen >= RUNS, `${op.method} ${op.path}: ${seen} cases in ${Date.now() - started} ms, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`)
  }

  // A few routes at a time: each case waits on PostgreSQL and Redis more than on the CPU.
  const settingsRoute = operations.filter((op) => op.path === '/admin/sessions/config' && op.method === 'PUT')
  const queue = operations.filter((op) => !settingsRoute.includes(op))
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let op = queue.shift(); op; op = queue.shift()) {
        await fuzz(op)
        await canaryHears(`${op.method} ${op.path}`)
      }
    }),
  )
  // Settings changes can shorten every session's life (the canary's too): that route goes
  // last, and the settings are put back before the canary's last check.
  const before = await app.ctx.settings.get()
  for (const op of settingsRoute) await fuzz(op)
  const { version: _v, updatedAt: _u, updatedBy: _b, ...initial } = before as typeof before & { updatedAt?: unknown; updatedBy?: unknown }
  await app.ctx.settings.update(initial as never, 1)
  await canaryHears('PUT /admin/sessions/config')
  t.equal((await app.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the process is still up')
  t.equal(tab.ws.readyState, tab.ws.OPEN, 'the canary tab was never closed')
  await tab.close()
}
