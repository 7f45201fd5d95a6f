// Security headers (quality.md S9) on every response, worked out once. @fastify/helmet
// builds helmet's middleware again for every request, parsing the CSP directives each time;
// ours have no nonces and nothing that depends on the request, so the headers are the same
// for every answer. They are taken from @fastify/helmet itself, on a throw-away instance at
// start-up, and set as they are on every request.
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet'
import Fastify, { type FastifyInstance } from 'fastify'

/** The headers @fastify/helmet sets with these options (names as it writes them). */
export async function securityHeaders(options: FastifyHelmetOptions): Promise<[string, string | string[]][]> {
  const probe = Fastify({ logger: false })
  try {
    await probe.register(helmet, options)
    probe.get('/', async (_req, reply) => reply.raw.getHeaders())
    const res = await probe.inject({ method: 'GET', url: '/' })
    const headers = res.json() as Record<string, string | string[]>
    return Object.entries(headers)
  } finally {
    await probe.close()
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The answer carries a token or session state: `Cache-Control: no-store` (http.md); every API route's default (infra/api-routes.ts). */
    noStore?: boolean
  }
}

/**
 * Sets `headers` (from securityHeaders) on every answer, and no-store where a route asks.
 * They go through Fastify's reply headers, not the raw response's setHeader: Node then
 * checks each name and value once, when it writes the head, instead of at every set.
 */
export function installSecurityHeaders(app: FastifyInstance, headers: readonly (readonly [string, string | string[]])[]): void {
  const all = Object.fromEntries(headers)
  const noStore = { ...all, 'cache-control': 'no-store' }
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(req.routeOptions.config.noStore ? noStore : all)
    done()
  })
}
