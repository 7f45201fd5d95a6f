// The uploads plugin: decorates `uploads` (session-scoped PDFs, on disk or S3) and
// registers its routes.
import fp from 'fastify-plugin'
import type { FeatureOptions } from '../sessions/index.js'
import { createStorage } from './create-storage.js'
import { uploadRoutes } from './routes.js'
import { Uploads } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    uploads: Uploads
  }
}

export default fp<FeatureOptions>(
  async (app, { http = true }) => {
    const { config } = app
    app.decorate('uploads', new Uploads({ db: app.database.db, storage: createStorage(config.uploads), audit: app.audit, maxBytes: config.uploads.maxBytes }))
    if (http) await app.register(uploadRoutes)
  },
  { name: 'tessera-uploads', dependencies: ['tessera-infra', 'tessera-audit', 'tessera-sessions'] },
)
