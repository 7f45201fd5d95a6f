// The audit plugin: decorates `audit`, the writer of audit events every feature records to.
import fp from 'fastify-plugin'
import { Audit } from './service.js'

declare module 'fastify' {
  interface FastifyInstance {
    audit: Audit
  }
}

export default fp(
  async (app) => {
    app.decorate('audit', new Audit(app.database.db, app.config.auditLogging))
  },
  { name: 'tessera-audit', dependencies: ['tessera-infra'] },
)
