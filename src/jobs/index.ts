// The jobs plugin: the BullMQ workers of a process with ROLE=worker or ROLE=all (the idle
// sweep, session-ended follow-ups, the activity write-behind, alert delivery, the cleanup),
// started once the services are up. Decorates `workers`; closing the app lets running jobs
// finish first, while the API still answers.
import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import { type WorkerOptions, Workers } from './workers.js'

declare module 'fastify' {
  interface FastifyInstance {
    workers: Workers
  }
}

export interface JobsOptions extends Omit<Partial<WorkerOptions>, 'locks' | 'log'> {
  /** Where the workers log (the app's logger by default). */
  log?: FastifyBaseLogger
}

export default fp<JobsOptions>(
  async (app, { log, ...options }) => {
    const workers = new Workers(app, {
      ...options,
      locks: app.locks,
      log: log ?? app.log,
    })
    app.decorate('workers', workers)
    await workers.start()
    // Before the server stops: the jobs under way finish while the API still answers.
    app.addHook('preClose', () => workers.close())
  },
  {
    name: 'tessera-jobs',
    dependencies: [
      'tessera-infra',
      'tessera-audit',
      'tessera-settings',
      'tessera-sessions',
      'tessera-auth',
      'tessera-locks',
      'tessera-alerts',
      'tessera-uploads',
    ],
  },
)
