// BullMQ queues shared by the API (producers) and the workers (consumers).
import { type ConnectionOptions, Queue } from 'bullmq'
import { Cluster } from 'ioredis'
import { clusterSeeds, type RedisTarget, redisOptions } from './redis.js'

export const QUEUE_NAMES = {
  sessionEnded: 'session-ended',
  idleSweep: 'idle-sweep',
  activityFlush: 'activity-flush',
  cleanup: 'cleanup',
  alertDelivery: 'alert-delivery',
} as const

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES]

export interface SessionEndedJob {
  sessionId: string
  userId: number
  reason: string
}

/**
 * BullMQ's connection: options for one Redis (BullMQ opens its own connections), or a
 * Cluster client of its own on a Cluster (BullMQ duplicates it for its blocking reads; close
 * it with closeBullConnections). On a Cluster every queue key carries the prefix's hash tag
 * (keys.ts, bullPrefix). `worker`: commands wait for the connection (BullMQ requires it).
 */
export function bullConnection(target: RedisTarget, name: string, o: { worker?: boolean } = {}): ConnectionOptions {
  const { host, port, username, password, db, tls } = redisOptions(target.url)
  const waiting = o.worker ? { maxRetriesPerRequest: null } : {}
  if (!target.clusterNodes || target.clusterNodes.length === 0) return { host, port, username, password, db, tls, connectionName: name, ...waiting }
  return new Cluster(clusterSeeds(target.clusterNodes), {
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    redisOptions: { username, password, tls, connectionName: name, ...waiting },
  })
}

/** Closes the Cluster clients bullConnection made (BullMQ leaves a client it was handed open). */
export async function closeBullConnections(connections: (ConnectionOptions | undefined)[]): Promise<void> {
  await Promise.all(connections.map((c) => (c instanceof Cluster ? c.quit().then(() => {}, () => c.disconnect()) : undefined)))
}

/** What queuing an ending needs of it (sessions/records.ts's EndedSession has more). */
type Ending = { id: string; userId: number; reason: string }

/**
 * A finished job is kept as long as the rest of what its ending leaves in Redis (the event
 * log's TTL): an hour of them was the largest thing a steady churn kept in Redis (the soak,
 * test/system). Nothing depends on a finished one: a repeated ending adds no job anyway
 * (markEnded has one winner), and the repair pass re-adds one deliberately.
 */
const sessionEndedOptions = (keepSeconds: number) =>
  ({
    attempts: 8,
    backoff: { type: 'exponential', delay: 200 },
    removeOnComplete: { age: keepSeconds, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  }) as const

/** Entries kept in each queue's event stream. */
const EVENTS_KEPT = 500

/** A session-ended job that failed for good is tried again by the repair pass after this long. */
const RETRY_FAILED_AFTER_MS = 60_000

const endedJob = (e: Ending, keepSeconds: number) => ({
  name: 'session-ended',
  data: { sessionId: e.id, userId: e.userId, reason: e.reason } satisfies SessionEndedJob,
  opts: { jobId: `ended-${e.id}`, ...sessionEndedOptions(keepSeconds) },
})

export class Queues {
  readonly all: Record<keyof typeof QUEUE_NAMES, Queue>
  private closing: Promise<void> | undefined
  private readonly connection: ConnectionOptions

  constructor(
    target: RedisTarget,
    readonly prefix: string,
    /** How long a finished session-ended job is kept (EVENT_LOG_TTL_SECONDS). */
    private readonly keepEndedSeconds = 600,
  ) {
    const connection = bullConnection(target, 'tessera-queues')
    this.connection = connection
    const make = (name: QueueName) => {
      // Nothing here listens to a queue's event stream (QueueEvents): BullMQ's default keeps
      // 10,000 entries per queue, which a steady churn takes most of an hour to fill (the soak, test/system).
      const q = new Queue(name, { connection, prefix, streams: { events: { maxLen: EVENTS_KEPT } } })
      q.on('error', () => {}) // reconnects by itself; readiness reports it
      return q
    }
    this.all = {
      sessionEnded: make(QUEUE_NAMES.sessionEnded),
      idleSweep: make(QUEUE_NAMES.idleSweep),
      activityFlush: make(QUEUE_NAMES.activityFlush),
      cleanup: make(QUEUE_NAMES.cleanup),
      alertDelivery: make(QUEUE_NAMES.alertDelivery),
    }
  }

  /** One session-ended job per session, whichever path ended it (the job id makes it idempotent). */
  async enqueueEnded(ended: Ending[]): Promise<void> {
    if (ended.length === 0) return
    await this.all.sessionEnded.addBulk(ended.map((e) => endedJob(e, this.keepEndedSeconds)))
  }

  /**
   * For endings whose follow-up is unfinished: queues the job again when it is missing or
   * finished (a job id is kept for a while after it ran, and adding it again would add
   * nothing), and retries one that failed for good a minute ago. A job that is waiting or
   * running is left alone. Returns how many it queued.
   */
  async requeueEnded(ended: Ending[]): Promise<number> {
    const queue = this.all.sessionEnded
    const jobs = await Promise.all(ended.map((e) => queue.getJob(`ended-${e.id}`)))
    const states = await Promise.all(jobs.map((j) => j?.getState()))
    let queued = 0
    for (const [i, e] of ended.entries()) {
      const job = jobs[i]
      const state = states[i]
      if (!job || state === 'completed' || state === 'unknown') {
        await job?.remove().catch(() => {}) // another worker may be taking it: then the add below adds nothing
        const { name, data, opts } = endedJob(e, this.keepEndedSeconds)
        await queue.add(name, data, opts)
        queued++
      } else if (state === 'failed' && Date.now() - (job.finishedOn ?? 0) > RETRY_FAILED_AFTER_MS) {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true })
        queued++
      }
    }
    return queued
  }

  /**
   * One delivery job per alert: the job id is the alert's delivery id, so adding it twice
   * adds nothing (R4). Backoff doubles from 1 s: eight attempts span about two minutes.
   */
  async enqueueAlert(jobId: string, data: object): Promise<void> {
    await this.all.alertDelivery.add('deliver', data, {
      jobId,
      attempts: 8,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 86_400, count: 10_000 },
      removeOnFail: { age: 7 * 86_400 },
    })
  }

  async ping(): Promise<void> {
    await this.all.sessionEnded.getJobCounts('waiting')
  }

  close(): Promise<void> {
    this.closing ??= Promise.all(Object.values(this.all).map((q) => q.close())).then(() => closeBullConnections([this.connection]))
    return this.closing
  }
}
