// Redis restarted empty (or flushed) loses the idle sweep's deadline lists. Input, a login
// or a token-cache fill puts a session back on them, but a session that nothing touches (no
// tab, no request) would never be due again: no idle warning, no idle timeout. So the
// sweep job makes sure first that the lists were seeded since Redis last lost its data.
import { and, asc, eq, gt } from 'drizzle-orm'
import type { ClientContext, Redis, Result } from 'ioredis'
import { sessions } from '../../db/schema.js'
import type { Db } from '../infra/db.js'
import { byShard, type SessionSlotKeys } from '../sessions/keys.js'
import { crossSlot } from '../infra/redis.js'

const BATCH = 1000

/** The seeded mark lives this long unless renewed (every sweep job does); should it lapse, seeding again is harmless. */
const SEEDED_MS = 3_600_000

// A session on none of the activity lists goes on due:active by its last activity (the later
// of PostgreSQL's and the hot one, read first: the presence hash is in the session's slot),
// and every one on due:lifetime; one that input put back meanwhile keeps its place.
// KEYS: due:active, due:idle, due:warned, due:warned-early, due:lifetime of one shard;
// ARGV: per session its id, last activity and end of lifetime.
const reseedLua = `
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  if not (redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id) or redis.call('ZSCORE', KEYS[4], id)) then
    redis.call('ZADD', KEYS[1], ARGV[i + 1], id)
  end
  redis.call('ZADD', KEYS[5], 'NX', ARGV[i + 2], id)
end
return 1
`

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    tesseraReseedDeadlines(...args: (string | number)[]): Result<number, Context>
  }
}

export class DeadlineLists {
  constructor(private readonly d: { db: Db; redis: Redis; keys: SessionSlotKeys }) {
    d.redis.defineCommand('tesseraReseedDeadlines', { numberOfKeys: 5, lua: reseedLua })
  }

  /** Seeds the lists from PostgreSQL unless they were since Redis last lost its data; returns how many sessions it seeded. */
  async ensureSeeded(): Promise<number> {
    // Renewing the mark is the check: it fails only when the mark is gone.
    if ((await this.d.redis.pexpire(this.d.keys.dueSeeded, SEEDED_MS)) === 1) return 0
    return this.seed()
  }

  /** Puts every active session back on the lists (see reseedLua), then marks them seeded. */
  private async seed(): Promise<number> {
    const { db, keys } = this.d
    let after = '00000000-0000-0000-0000-000000000000'
    let seeded = 0
    for (;;) {
      const rows = await db
        .select({ id: sessions.id, lastActivity: sessions.lastActivity, expiresAt: sessions.expiresAt })
        .from(sessions)
        .where(and(eq(sessions.status, 'active'), gt(sessions.id, after)))
        .orderBy(asc(sessions.id))
        .limit(BATCH)
      if (rows.length > 0) {
        const hot = crossSlot(this.d.redis)
        for (const r of rows) hot.hget(keys.sessionPresence(r.id), 'lastActivity')
        const replies = (await hot.exec()) ?? []
        const seeds = new Map(
          rows.map((r, i) => [r.id, [Math.max(r.lastActivity.getTime(), Number(replies[i]?.[1] ?? 0)), r.expiresAt.getTime()]]),
        )
        await Promise.all(
          [...byShard(keys, [...seeds.keys()])].map(([d, ids]) =>
            this.d.redis.tesseraReseedDeadlines(d.active, d.idle, d.warned, d.warnedEarly, d.lifetime, ...ids.flatMap((id) => [id, ...seeds.get(id)!])),
          ),
        )
        seeded += rows.length
      }
      if (rows.length < BATCH) break
      after = rows.at(-1)!.id
    }
    await this.d.redis.set(keys.dueSeeded, '1', 'PX', SEEDED_MS)
    return seeded
  }
}
