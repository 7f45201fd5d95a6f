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

export async function installSecurityHeaders(app: FastifyInstance, options: FastifyHelmetOptions): Promise<void> {
  const headers = await securityHeaders(options)
  app.addHook('onRequest', (_req, reply, done) => {
    const res = reply.raw
    for (let i = 0; i < headers.length; i++) res.setHeader(headers[i]![0], headers[i]![1])
    done()
  })
}
