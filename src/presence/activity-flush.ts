// Write-behind of last activity: the hot value lives in Redis; PostgreSQL gets it in
// batches every ACTIVITY_FLUSH_INTERVAL_SECONDS. At most one interval is lost with Redis.
// An ended session's row is never touched: its final value is the session-ended job's to write.
import type { Redis } from 'ioredis'
import type { Pool } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'
import { crossSlot } from '../infra/redis.js'

export async function flushActivity(d: { redis: Redis; sql: Pool; keys: RedisKeys }, batchSize = 500): Promise<number> {
  let flushed = 0
  for (const shard of d.keys.deadlineShards) flushed += await flushShard(d, shard.dirty, batchSize)
  return flushed
}

/** The sessions of one shard's dirty set (infra/keys.ts), in batches. */
async function flushShard(d: { redis: Redis; sql: Pool; keys: RedisKeys }, dirty: string, batchSize: number): Promise<number> {
  let flushed = 0
  for (;;) {
    const ids = (await d.redis.spop(dirty, batchSize)) as string[]
    if (ids.length === 0) return flushed
    const pipeline = crossSlot(d.redis)
    for (const id of ids) pipeline.hget(d.keys.sessionPresence(id), 'lastActivity')
    const values = ((await pipeline.exec()) ?? []).map(([, v]) => (v === null ? null : Number(v)))
    const rows = ids.flatMap((id, i) => (values[i] ? [{ id, at: new Date(values[i]!).toISOString() }] : []))
    if (rows.length > 0) {
      try {
        await d.sql`
          update sessions s set last_activity = v.at::timestamptz
          from json_to_recordset(${JSON.stringify(rows)}::json) as v(id uuid, at text)
          where s.id = v.id and s.status = 'active' and s.last_activity < v.at::timestamptz`
      } catch (err) {
        // PostgreSQL away: the sessions stay dirty for the next flush instead of being dropped.
        await d.redis.sadd(dirty, ...rows.map((r) => r.id))
        throw err
      }
    }
    flushed += rows.length
    if (ids.length < batchSize) return flushed
  }
}
