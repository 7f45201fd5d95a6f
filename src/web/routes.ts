// The browser pages, built by `npm run build:client` into dist/client/pages: the demo app at
// / and the admin dashboard at /admin (one HTML route; the dashboard navigates within the
// page, so none of its pages takes a path of the admin API). Hashed assets are cached for
// good; the HTML is revalidated on every load.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import { projectRoot } from '../infra/db.js'

export const pagesDir = () => join(projectRoot(), 'dist', 'client', 'pages')

/** Each page's HTML (under the pages folder) and the path it is served at. */
const PAGES = [
  { path: '/', file: 'demo/index.html' },
  { path: '/admin', file: 'dashboard/index.html' },
]

export const webRoutes: FastifyPluginAsyncTypebox<{ dir?: string }> = async (app, { dir = pagesDir() }) => {
  const missing = PAGES.filter((p) => !existsSync(join(dir, p.file)))
  if (missing.length > 0) {
    app.log.warn({ dir }, `the browser pages are not built (npm run build:client): ${missing.map((p) => p.path).join(' and ')} serve nothing`)
    return
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    // One route per built asset, found at start-up: no catch-all that would shadow the API's 404s.
    wildcard: false,
    index: false,
    globIgnore: ['**/*.html'],
    setHeaders: (reply, path) => {
      reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
    },
  })
  for (const page of PAGES) {
    app.get(page.path, { schema: { hide: true } }, (_req, reply) => reply.header('cache-control', 'no-cache').sendFile(page.file))
  }
}
