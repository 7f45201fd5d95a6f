// Write-behind of last activity: the hot value lives in Redis; PostgreSQL gets it in
// batches every ACTIVITY_FLUSH_INTERVAL_SECONDS. At most one interval is lost with Redis.
// An ended session's row is never touched: its final value is the session-ended job's to write.
import { and, eq, sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import { sessions } from '../../db/schema.js'
import type { Db } from '../infra/db.js'
import type { SessionSlotKeys } from '../sessions/keys.js'
import { crossSlot } from '../infra/redis.js'

export async function flushActivity(d: { redis: Redis; db: Db; keys: SessionSlotKeys }, batchSize = 500): Promise<number> {
  let flushed = 0
  for (const shard of d.keys.deadlineShards) flushed += await flushShard(d, shard.dirty, batchSize)
  return flushed
}

/** The sessions of one shard's dirty set (sessions/keys.ts), in batches. */
async function flushShard(d: { redis: Redis; db: Db; keys: SessionSlotKeys }, dirty: string, batchSize: number): Promise<number> {
  let flushed = 0
  for (;;) {
    const ids = await d.redis.spop(dirty, batchSize)
    if (ids.length === 0) return flushed
    const pipeline = crossSlot(d.redis)
    for (const id of ids) pipeline.hget(d.keys.sessionPresence(id), 'lastActivity')
    const values = ((await pipeline.exec()) ?? []).map(([, v]) => (v === null ? null : Number(v)))
    const rows = ids.flatMap((id, i) => (values[i] ? [{ id, at: new Date(values[i]!).toISOString() }] : []))
    if (rows.length > 0) {
      try {
        await flushStatement(d.db).execute({ rows: JSON.stringify(rows) })
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

/**
 * The batch's update: each session's last activity from the JSON rows, never backwards, never
 * on an ended session. Prepared, so that postgres.js describes it once per connection rather
 * than before every batch (a round trip of its own).
 */
function flushStatement(db: Db) {
  const batch = sql`json_to_recordset(${sql.placeholder('rows')}::json) as v(id uuid, at text)`
  return db
    .update(sessions)
    .set({ lastActivity: sql`v.at::timestamptz` })
    .from(batch)
    .where(and(sql`${sessions.id} = v.id`, eq(sessions.status, 'active'), sql`${sessions.lastActivity} < v.at::timestamptz`))
    .prepare('activity_flush')
}
