// What each of Tessera's app-wide hooks costs (issue 16): the bare session_state route of
// the P5 baseline, once alone and once with each hook that runs ahead of every route, on a
// Fastify instance of its own, measured by the same closed loop. The difference in server
// CPU per request is that hook's price on every request Tessera answers.
import cookie from '@fastify/cookie'
import cors from '@fastify/cors'
import { createHash } from 'node:crypto'
import Fastify, { type FastifyInstance, type RouteHandlerMethod } from 'fastify'
import type { Redis } from 'ioredis'
import { Histogram, Registry } from 'prom-client'
import { securityHeadersOf } from '../../src/app.js'
import { CORS, registerCors } from '../../src/auth/cors.js'
import type { Config } from '../../src/config.js'
import { installSecurityHeaders } from '../../src/infra/security-headers.js'
import { originAllowed } from '../../src/sessions/guards.js'
import { onCleanup, startMeter } from './harness.js'
import type { LoadProcess } from './load-process.js'
import { progress } from './load-process.js'
import { num } from './stats.js'

type Variant = { name: string; add: (app: FastifyInstance) => Promise<void> | void; route?: (answer: object) => RouteHandlerMethod }

// The floor under any authenticated route: what the route's own steps cost without Tessera around them.
const TRIVIAL_SCRIPT = "return redis.call('PTTL', KEYS[1])"

function variants(config: Config, redis: Redis): Variant[] {
  return [
    { name: 'bare route', add: () => {} },
    { name: '+ security headers (onRequest)', add: async (app) => installSecurityHeaders(app, await securityHeadersOf(config)) },
    { name: '+ Tessera’s CORS hook', add: (app) => registerCors(app, config) },
    {
      // What Tessera registered before issue 16: the plugin, with the allow-list through its delegator.
      name: '+ @fastify/cors with a delegator',
      add: async (app) =>
        void (await app.register(cors, {
          delegator: (req, callback) =>
            callback(null, {
              credentials: true,
              methods: CORS.allowMethods,
              allowedHeaders: CORS.allowHeaders,
              exposedHeaders: CORS.exposeHeaders,
              maxAge: Number(CORS.maxAgeSeconds),
              strictPreflight: false,
              origin: typeof req.headers.origin === 'string' && originAllowed(req, config.allowedOrigins) ? req.headers.origin : false,
            }),
        })),
    },
    { name: '+ @fastify/cookie', add: async (app) => void (await app.register(cookie)) },
    {
      name: '+ request metrics (onResponse)',
      add: (app) => {
        const histogram = new Histogram({ name: 'h', help: 'h', labelNames: ['method', 'route', 'status'], registers: [new Registry()] })
        app.addHook('onResponse', (req, reply, done) => {
          histogram.observe({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` }, reply.elapsedTime / 1000)
          done()
        })
      },
    },
    { name: '+ an empty async onRequest hook', add: (app) => app.addHook('onRequest', async () => {}) },
    {
      name: '+ SHA-256 of a cookie in the route',
      add: () => {},
      route: (answer) => async (req) => {
        createHash('sha256').update(req.headers.cookie ?? '').digest('base64url')
        return answer
      },
    },
    {
      name: '+ one Redis round trip in the route (a trivial script)',
      add: () => {},
      route: (answer) => async () => {
        await redis.eval(TRIVIAL_SCRIPT, 1, 'tessera-bench:hook-costs:none')
        return answer
      },
    },
    // Once more at the end: the machine's drift over the run shows as the two bare runs' difference.
    { name: 'bare route, again', add: () => {} },
  ]
}

export interface HookCost {
  name: string
  rps: number
  cpuPerRequestUs: number
}

/** Each variant's closed loop: requests/s and server CPU per request. */
export async function measureHookCosts(
  bench: string,
  load: LoadProcess,
  answer: object,
  config: Config,
  redis: Redis,
  loop: { connections: number; seconds: number; warmup: number; cookies: string[] },
): Promise<HookCost[]> {
  const costs: HookCost[] = []
  for (const v of variants(config, redis)) {
    const app = Fastify({ logger: false })
    await v.add(app)
    app.get('/api/session_state', v.route?.(answer) ?? (async () => answer))
    onCleanup(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = `127.0.0.1:${(app.server.address() as { port: number }).port}`
    progress(bench, `hook costs: ${v.name}`)
    const meter = startMeter()
    const r = await load.call<{ completed: number; rps: number }>('closedLoop', { label: v.name, address, path: '/api/session_state', ...loop })
    const server = meter.stop()
    await app.close()
    costs.push({ name: v.name, rps: r.rps, cpuPerRequestUs: (1000 * server.cpuMs) / Math.max(1, r.completed) })
  }
  return costs
}

/** The table's rows: each variant beside the mean of the two bare runs. */
export function hookCostRows(costs: HookCost[]): string[][] {
  const bare = [costs[0]!, costs.at(-1)!]
  const reference = (bare[0]!.cpuPerRequestUs + bare[1]!.cpuPerRequestUs) / 2
  return costs.map((c) => {
    const delta = c.cpuPerRequestUs - reference
    return [c.name, num(c.rps), num(c.cpuPerRequestUs), bare.includes(c) ? '' : `${delta >= 0 ? '+' : ''}${num(delta)}`]
  })
}

export const HOOK_COST_HEADER = ['variant of the bare route', 'requests/s', 'server CPU per request µs', 'vs the bare runs’ mean µs']
