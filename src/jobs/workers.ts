// The BullMQ workers of a process with ROLE=worker or ROLE=all: the idle sweep (every
// second, once across the cluster), session-ended follow-ups, the activity write-behind
// and the cleanup. close() lets running jobs finish.
import { type Job, Worker } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import { AlertDelivery, deliveryOptions } from '../alerts/delivery.js'
import type { AppContext } from '../context.js'
import { flushActivity } from '../presence/activity-flush.js'
import { IdleSweep } from '../presence/sweep.js'
import { runCleanup } from './cleanup.js'
import { bullConnection, QUEUE_NAMES, type QueueName, type SessionEndedJob } from './queues.js'
import { type LockReleaser, processSessionEnded } from './session-ended.js'

export const SWEEP_EVERY_MS = 1000

export interface WorkerOptions {
  locks: LockReleaser
  log: FastifyBaseLogger
  /** Test hook, see processSessionEnded. */
  afterRelease?: (job: SessionEndedJob) => Promise<void>
  /** How long a job's lock lives without renewal, i.e. how soon a killed worker's job is retried (BullMQ default 30 s). */
  lockDurationMs?: number
}

export class Workers {
  private readonly workers: Worker[] = []
  private closing: Promise<void> | undefined

  constructor(
    private readonly ctx: AppContext,
    private readonly o: WorkerOptions,
  ) {}

  async start(): Promise<void> {
    const { ctx } = this
    const sweep = new IdleSweep({ audit: ctx.audit, redis: ctx.redis, keys: ctx.keys, bus: ctx.bus, sessions: ctx.sessions, settings: ctx.settings })
    const db = { sql: ctx.database.sql, redis: ctx.redis, keys: ctx.keys }

    this.work(QUEUE_NAMES.idleSweep, 1, async () => {
      const r = await sweep.tick()
      if (r.expired > 0) ctx.metrics.sweepLag.set(r.lagMs / 1000)
      return r
    })
    // A job whose worker died comes back with attemptsMade unchanged (a stall is not a
    // failure); attemptsStarted counts that earlier run too, so the retry re-announces (R4).
    this.work(QUEUE_NAMES.sessionEnded, 8, (job: Job<SessionEndedJob>) =>
      processSessionEnded(
        { ...db, store: ctx.store, locks: this.o.locks, afterRelease: this.o.afterRelease },
        job.data,
        Math.max(job.attemptsMade, job.attemptsStarted - 1),
      ),
    )
    this.work(QUEUE_NAMES.activityFlush, 1, () => flushActivity(db))
    const delivery = new AlertDelivery(deliveryOptions(ctx.config, ctx.secret))
    this.work(QUEUE_NAMES.alertDelivery, 4, (job) => delivery.process(job))
    this.work(QUEUE_NAMES.cleanup, 1, () =>
      runCleanup({ ...db, locks: this.o.locks, sessions: ctx.sessions, store: ctx.store, settings: ctx.settings, batchSize: ctx.config.cleanupBatchSize, retention: ctx.config.retention }),
    )

    const { all } = ctx.queues
    const repeat = { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } }
    await all.idleSweep.upsertJobScheduler('idle-sweep', { every: SWEEP_EVERY_MS }, { name: 'tick', opts: repeat })
    await all.activityFlush.upsertJobScheduler('activity-flush', { every: ctx.config.activityFlushIntervalSeconds * 1000 }, { name: 'flush', opts: repeat })
    await all.cleanup.upsertJobScheduler('cleanup', { every: ctx.config.cleanupIntervalSeconds * 1000 }, { name: 'cleanup', opts: repeat })
  }

  private work<T>(queue: QueueName, concurrency: number, run: (job: Job) => Promise<T>) {
    const { metrics } = this.ctx
    const worker = new Worker(
      queue,
      async (job) => {
        const stop = metrics.jobDuration.startTimer({ queue })
        try {
          return await run(job)
        } finally {
          stop()
        }
      },
      {
        connection: { ...bullConnection(this.ctx.config.redisUrl, `tessera-worker-${queue}`), maxRetriesPerRequest: null },
        prefix: this.ctx.queues.prefix,
        concurrency,
        // A job whose worker died is retried, not failed, up to a few times (BullMQ's default is once).
        maxStalledCount: 5,
        ...(this.o.lockDurationMs ? { lockDuration: this.o.lockDurationMs, stalledInterval: this.o.lockDurationMs } : {}),
      },
    )
    worker.on('completed', () => metrics.jobs.inc({ queue, result: 'completed' }))
    worker.on('failed', (job, err) => {
      metrics.jobs.inc({ queue, result: 'failed' })
      this.o.log.warn({ err, queue, jobId: job?.id, attempts: job?.attemptsMade }, 'job failed')
    })
    worker.on('error', (err) => this.o.log.warn({ err, queue }, 'worker error'))
    this.workers.push(worker)
  }

  /** Stops taking jobs and waits for the running ones. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.workers.map((w) => w.close())).then(() => {})
    return this.closing
  }
}
