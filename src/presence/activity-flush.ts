// Write-behind of last activity: the hot value lives in Redis; PostgreSQL gets it in
// batches every ACTIVITY_FLUSH_INTERVAL_SECONDS. At most one interval is lost with Redis.
// An ended session's row is never touched: its final value is the session-ended job's to write.
import { sql } from 'drizzle-orm'
import type { Redis } from 'ioredis'
import { sessions } from '../../db/schema.js'
import type { Db } from '../infra/db.js'
import type { RedisKeys } from '../infra/keys.js'

export async function flushActivity(d: { redis: Redis; db: Db; keys: RedisKeys }, batchSize = 500): Promise<number> {
  let flushed = 0
  for (;;) {
    const ids = await d.redis.spop(d.keys.dirtyActivity, batchSize)
    if (ids.length === 0) return flushed
    const pipeline = d.redis.pipeline()
    for (const id of ids) pipeline.hget(d.keys.sessionPresence(id), 'lastActivity')
    const values = ((await pipeline.exec()) ?? []).map(([, v]) => (v === null ? null : Number(v)))
    const rows = ids.flatMap((id, i) => (values[i] ? [{ id, at: new Date(values[i]!).toISOString() }] : []))
    if (rows.length > 0) {
      try {
        await d.db.execute(sql`
          update ${sessions} set last_activity = v.at::timestamptz
          from json_to_recordset(${JSON.stringify(rows)}::json) as v(id uuid, at text)
          where ${sessions.id} = v.id and ${sessions.status} = 'active' and ${sessions.lastActivity} < v.at::timestamptz`)
      } catch (err) {
        // PostgreSQL away: the sessions stay dirty for the next flush instead of being dropped.
        await d.redis.sadd(d.keys.dirtyActivity, ...rows.map((r) => r.id))
        throw err
      }
    }
    flushed += rows.length
    if (ids.length < batchSize) return flushed
  }
}
