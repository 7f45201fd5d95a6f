// The browser pages, built by `npm run build:client` into dist/client: the demo app at /.
// Hashed assets are cached for good; the HTML is revalidated on every load.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { projectRoot } from '../infra/db.js'

export const demoDir = () => join(projectRoot(), 'dist', 'client', 'demo')

export async function webRoutes(app: FastifyInstance, { dir = demoDir() }: { dir?: string } = {}) {
  if (!existsSync(join(dir, 'index.html'))) {
    app.log.warn({ dir }, 'the browser pages are not built (npm run build:client): / serves nothing')
    return
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    // One route per built file, found at start-up: no catch-all that would shadow the API's 404s.
    wildcard: false,
    index: 'index.html',
    setHeaders: (reply, path) => {
      reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
    },
  })
}
