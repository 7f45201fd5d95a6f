// The BullMQ workers of a process with ROLE=worker or ROLE=all: the idle sweep (a job every
// second, once across the cluster, sweeping four times), session-ended follow-ups, the activity write-behind
// and the cleanup. close() lets running jobs finish.
import { type Job, type Queue, Worker } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import { AlertDelivery, deliveryOptions } from '../alerts/delivery.js'
import type { Audit } from '../audit/service.js'
import type { LoginHistory } from '../auth/login-history.js'
import type { Config } from '../config.js'
import type { Alerts } from '../alerts/service.js'
import type { EventBus } from '../infra/bus.js'
import type { Database } from '../infra/db.js'
import type { SessionSlotKeys } from '../sessions/keys.js'
import type { Metrics } from '../infra/metrics.js'
import type { Queues } from '../infra/queues.js'
import type { Redis } from 'ioredis'
import type { SessionDetails } from '../sessions/detail.js'
import type { SessionEndings } from '../sessions/endings.js'
import type { Sessions } from '../sessions/service.js'
import type { SettingsService } from '../settings/service.js'
import type { Uploads } from '../uploads/service.js'
import { PlatformEventOutbox } from '../platforms/outbox.js'
import { flushActivity } from '../presence/activity-flush.js'
import { DeadlineLists } from '../presence/reseed.js'
import { IdleSweep, type SweepResult } from '../presence/sweep.js'
import { loggable } from '../infra/errors.js'
import { runCleanup } from './cleanup.js'
import { redisTarget } from '../infra/redis.js'
import { bullConnection, closeBullConnections, QUEUE_NAMES, type QueueName, type SessionEndedJob } from '../infra/queues.js'
import { type LockReleaser, processSessionEnded, repairEndings } from './session-ended.js'

export const SWEEP_EVERY_MS = 1000
/**
 * Sweeps per sweep job. The job comes once a second, once across the cluster; one sweep a
 * second would leave a deadline up to a second (plus the work) before it is acted on, and
 * P7 asks for every due session to be ended within 1 s. Sweeping again within the job,
 * a quarter second apart, keeps that wait under 250 ms at the cost of three cheap reads
 * (a sweep with nothing due is one pipelined Redis round trip).
 */
const SWEEPS_PER_JOB = 4

/**
 * session-ended jobs a worker process runs at once. More does not finalize a burst of
 * endings any sooner on two cores: it is bound by CPU, not by the jobs' round trips
 * (benchmarks.md, "Follow-ups of a burst").
 */
export const SESSION_ENDED_CONCURRENCY = 8

/** What the workers use of the services (the Fastify instance, or Tessera's parts, has all of it). */
export interface WorkersDeps {
  config: Config
  secret: string
  database: Database
  redis: Redis
  sessionKeys: SessionSlotKeys
  metrics: Metrics
  bus: EventBus
  queues: Queues
  audit: Audit
  settings: SettingsService
  sessions: Sessions
  sessionDetails: SessionDetails
  endings: SessionEndings
  loginHistory: Pick<LoginHistory, 'purgeBatch'>
  alerts: Pick<Alerts, 'repairDeliveries'>
  uploads: Pick<Uploads, 'purgeEnded'>
}

export interface WorkerOptions {
  locks: LockReleaser
  log: FastifyBaseLogger
  /** Test hook, see processSessionEnded. */
  afterRelease?: (job: SessionEndedJob) => Promise<void>
  /** How long a job's lock lives without renewal, i.e. how soon a killed worker's job is retried (BullMQ default 30 s). */
  lockDurationMs?: number
  /** Experiment hook for the sweep benchmark: session-ended jobs run at once (default SESSION_ENDED_CONCURRENCY). */
  sessionEndedConcurrency?: number
}

/** How often each worker process checks that the job schedulers are still there. */
const SCHEDULE_CHECK_MS = 2000

interface Schedule {
  queue: Queue
  id: string
  every: number
  name: string
}

export class Workers {
  private readonly workers: Worker[] = []
  private closing: Promise<void> | undefined
  private schedules: Schedule[] = []
  private scheduleCheck: NodeJS.Timeout | undefined

  constructor(
    private readonly ctx: WorkersDeps,
    private readonly o: WorkerOptions,
  ) {}

  async start(): Promise<void> {
    const { ctx } = this
    const db = { db: ctx.database.db, redis: ctx.redis, keys: ctx.sessionKeys }
    const sweep = new IdleSweep({ ...db, audit: ctx.audit, bus: ctx.bus, sessions: ctx.sessions, settings: ctx.settings })

    const deadlines = new DeadlineLists(db)
    const outbox = new PlatformEventOutbox({ db: ctx.database.db, bus: ctx.bus })
    this.work(QUEUE_NAMES.idleSweep, 1, async () => {
      const reseeded = await deadlines.ensureSeeded()
      const r = await this.sweepSeveralTimes(sweep)
      // Endings cut short (a crash after the commit, Redis away): their follow-up is queued again.
      return {
        ...r,
        reseeded,
        repaired: await repairEndings({ endings: ctx.endings, queues: ctx.queues }),
        // Platform events whose change committed without them going out.
        republished: await outbox.repair(),
        // Alerts stored without their delivery queued.
        alertsQueued: await ctx.alerts.repairDeliveries(),
      }
    })
    this.work(QUEUE_NAMES.sessionEnded, this.o.sessionEndedConcurrency ?? SESSION_ENDED_CONCURRENCY, (job: Job<SessionEndedJob>) =>
      processSessionEnded({ endings: ctx.endings, sessions: ctx.sessions, locks: this.o.locks, afterRelease: this.o.afterRelease }, job.data),
    )
    this.work(QUEUE_NAMES.activityFlush, 1, () => flushActivity(db))
    const delivery = new AlertDelivery(deliveryOptions(ctx.config, ctx.secret))
    this.work(QUEUE_NAMES.alertDelivery, 4, (job) => delivery.process(job))
    this.work(QUEUE_NAMES.cleanup, 1, () =>
      runCleanup({
        redis: ctx.redis,
        keys: ctx.sessionKeys,
        locks: this.o.locks,
        sessions: ctx.sessions,
        sessionDetails: ctx.sessionDetails,
        endings: ctx.endings,
        audit: ctx.audit,
        loginHistory: ctx.loginHistory,
        settings: ctx.settings,
        batchSize: ctx.config.cleanupBatchSize,
        retention: ctx.config.retention,
        uploads: ctx.uploads,
      }),
    )

    const { all } = ctx.queues
    this.schedules = [
      { queue: all.idleSweep, id: 'idle-sweep', every: SWEEP_EVERY_MS, name: 'tick' },
      { queue: all.activityFlush, id: 'activity-flush', every: ctx.config.activityFlushIntervalSeconds * 1000, name: 'flush' },
      { queue: all.cleanup, id: 'cleanup', every: ctx.config.cleanupIntervalSeconds * 1000, name: 'cleanup' },
    ]
    for (const s of this.schedules) await this.schedule(s)
    this.checkSchedulesLater()
  }

  private schedule(s: Schedule) {
    return s.queue.upsertJobScheduler(s.id, { every: s.every }, { name: s.name, opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } } })
  }

  /**
   * A job scheduler lives in Redis: Redis restarted empty (or flushed) takes it away, and
   * with it every sweep, flush and cleanup until a worker starts again. So each worker
   * looks now and then, and puts back what is missing.
   */
  private checkSchedulesLater() {
    this.scheduleCheck = setTimeout(async () => {
      try {
        for (const s of this.schedules) if (!this.closing && !(await s.queue.getJobScheduler(s.id))) await this.schedule(s)
      } catch (err) {
        this.o.log.warn({ err: loggable(err) }, 'job schedulers could not be checked; trying again')
      }
      if (!this.closing) this.checkSchedulesLater()
    }, SCHEDULE_CHECK_MS)
    this.scheduleCheck.unref()
  }

  /** SWEEPS_PER_JOB sweeps spread over the job's second; a shutdown stops after the current one. */
  private async sweepSeveralTimes(sweep: IdleSweep) {
    const start = Date.now()
    const total = { idled: 0, warned: 0, expired: 0, lagMs: 0, sweeps: [] as SweepResult[] }
    for (let i = 0; i < SWEEPS_PER_JOB && (i === 0 || !this.closing); i++) {
      const wait = start + (i * SWEEP_EVERY_MS) / SWEEPS_PER_JOB - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const r = await sweep.tick()
      if (r.expired > 0) this.ctx.metrics.sweepLag.set(r.lagMs / 1000)
      total.idled += r.idled
      total.warned += r.warned
      total.expired += r.expired
      total.lagMs = Math.max(total.lagMs, r.lagMs)
      total.sweeps.push(r)
    }
    return total
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
        connection: bullConnection(redisTarget(this.ctx.config), `tessera-worker-${queue}`, { worker: true }),
        prefix: this.ctx.queues.prefix,
        concurrency,
        // A job whose worker died is retried, not failed, up to a few times (BullMQ's default is once).
        maxStalledCount: 5,
        ...(this.o.lockDurationMs ? { lockDuration: this.o.lockDurationMs, stalledInterval: this.o.lockDurationMs } : {}),
      },
    )
    worker.on('completed', () => metrics.jobs.inc({ queue, result: 'completed' }))
    // 'failed' comes after every failed attempt: a job counts as failed once, when no retry is left.
    worker.on('failed', (job, err) => {
      const final = !job || job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError'
      metrics.jobs.inc({ queue, result: final ? 'failed' : 'retried' })
      this.o.log.warn({ err: loggable(err), queue, jobId: job?.id, attempts: job?.attemptsMade, final }, final ? 'job failed' : 'job attempt failed; retrying')
    })
    // A job whose worker died (or stopped renewing its lock) goes back to the queue.
    worker.on('stalled', (jobId) => {
      metrics.jobs.inc({ queue, result: 'stalled' })
      this.o.log.warn({ queue, jobId }, 'job stalled; it runs again')
    })
    worker.on('error', (err) => this.o.log.warn({ err, queue }, 'worker error'))
    this.workers.push(worker)
  }

  /** Stops taking jobs and waits for the running ones. */
  close(): Promise<void> {
    clearTimeout(this.scheduleCheck)
    this.closing ??= Promise.all(this.workers.map((w) => w.close())).then(() => closeBullConnections(this.workers.map((w) => w.opts.connection)))
    return this.closing
  }
}
