// The part of session_state only PostgreSQL holds (the session's active platform and its
// state version), cached in Redis so that reading the state needs no query.
//
// Cache-aside with a generation per user. Every write that can change what a session of
// the user shows (a switch, a platform deleted, a new default) brackets its transaction:
// before it, a fresh generation and a "writing" mark; after it (and after its event is
// published), another fresh generation and the mark taken back. A reader uses an entry only
// if it carries the current generation and no write is under way; a reader that went to
// PostgreSQL fills only if the generation it saw is still current and nothing is writing.
// So an entry can never outlive a change, even one whose process died after its commit
// (the mark then lapses after WRITING_MS, and readers fill from PostgreSQL again).
import { randomUUID } from 'node:crypto'
import { eq, sql } from 'drizzle-orm'
import type { ClientContext, Redis, Result } from 'ioredis'
import { platforms, sessions } from '../../db/schema.js'
import type { Db } from '../infra/db.js'
import type { SessionSlotKeys } from './keys.js'

export interface ActivePlatform {
  id: number
  name: string
  type: 'pixelfed' | 'mastodon' | 'other'
  instanceUrl: string
  isDefault: boolean
}

export interface PlatformState {
  version: number
  platform: ActivePlatform | null
}

/** What one read of Redis found: the entry, the user's generation and whether a write is under way. */
export interface CachedState {
  entry: string
  gen: string
  writing: boolean
}

/** How long an entry lives unread; shorter than a generation, so a reused empty generation never matches an old entry. */
const ENTRY_MS = 10 * 60_000
const GEN_MS = 60 * 60_000
/** A write's mark lapses after this if its process dies before taking it back. */
const WRITING_MS = 30_000

// The writing mark is the set of the writes under way, by id, not a count: ioredis sends a
// command again after a reconnect when its answer was lost, and a begin counted twice
// would outlast its end.
// KEYS: generation, writing mark; ARGV: new generation, generation ms, writing ms, write id
const beginLua = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`

// KEYS: generation, writing mark; ARGV: new generation, generation ms, write id
// (the mark goes with its last member)
const endLua = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SREM', KEYS[2], ARGV[3])
return 1
`

// A fill checks the generation and the mark (the user's slot), then writes the entry (the
// session's slot): two steps, as a Redis Cluster keeps those slots apart. A write that
// begins between them leaves an entry of the old generation, which no reader uses.

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    tesseraStateBegin(...args: (string | number)[]): Result<number, Context>
    tesseraStateEnd(...args: (string | number)[]): Result<number, Context>
  }
}

/** A cache entry: the generation it was filled under, the state version and the active platform. */
interface Entry {
  g: string
  v: number
  p: ActivePlatform | null
}

/** A write under way (see begin). */
export type StateChange = Promise<{ userId: number; id: string } | null>

export class StateCache {
  /** Prepared, as the sessions store's reads by id are (see there). */
  private readonly stateOf

  constructor(
    db: Db,
    private readonly redis: Redis,
    private readonly keys: SessionSlotKeys,
  ) {
    redis.defineCommand('tesseraStateBegin', { numberOfKeys: 2, lua: beginLua })
    redis.defineCommand('tesseraStateEnd', { numberOfKeys: 2, lua: endLua })
    this.stateOf = db
      .select({
        version: sessions.version,
        platform: { id: platforms.id, name: platforms.name, type: platforms.type, instanceUrl: platforms.instanceUrl, isDefault: platforms.isDefault },
      })
      .from(sessions)
      .leftJoin(platforms, eq(platforms.id, sessions.activePlatformId))
      .where(eq(sessions.id, sql.placeholder('id')))
      .prepare('session_platform_state')
  }

  /** The session's platform state: from the cache when it is current, else from PostgreSQL. */
  async read(sessionId: string, userId: number): Promise<PlatformState> {
    const k = this.keys
    const [entry, gen, writing] = await Promise.all([
      this.redis.get(k.sessionState(sessionId)),
      this.redis.get(k.userStateGen(userId)),
      this.redis.exists(k.userStateWriting(userId)),
    ])
    return this.resolve(sessionId, userId, { entry: entry ?? '', gen: gen ?? '', writing: writing === 1 })
  }

  /** The state from what a read of Redis found (read, or the session_state script). */
  async resolve(sessionId: string, userId: number, c: CachedState): Promise<PlatformState> {
    if (!c.writing && c.entry !== '') {
      const e: Entry = JSON.parse(c.entry)
      if (e.g === c.gen) return { version: e.v, platform: e.p }
    }
    const state = await this.load(sessionId)
    if (!c.writing) {
      const k = this.keys
      const [gen, writing] = await Promise.all([this.redis.get(k.userStateGen(userId)), this.redis.exists(k.userStateWriting(userId))])
      if (writing === 0 && (gen ?? '') === c.gen) {
        await this.redis.set(k.sessionState(sessionId), JSON.stringify({ g: c.gen, v: state.version, p: state.platform } satisfies Entry), 'PX', ENTRY_MS)
      }
    }
    return state
  }

  private async load(sessionId: string): Promise<PlatformState> {
    const [row] = await this.stateOf.execute({ id: sessionId })
    return { version: row?.version ?? 1, platform: row?.platform ?? null }
  }

  /**
   * Marks a write of the user's platform state as under way; `end` it when the write is
   * committed and announced, or has failed. Started before whatever else the write
   * looks up first, so it costs no extra round trip; the write must await it before it commits.
   */
  begin(userId: number): StateChange {
    const k = this.keys
    const id = randomUUID()
    const started = this.redis.tesseraStateBegin(k.userStateGen(userId), k.userStateWriting(userId), randomUUID(), GEN_MS, WRITING_MS, id).then(() => ({ userId, id }))
    // Awaited later (or only by end): never an unhandled rejection meanwhile.
    started.catch(() => {})
    return started
  }

  /**
   * After the write: readers fill again, and never with what they read before it. Never
   * throws: when Redis refuses, the mark lapses on its own and nothing stale is filled meanwhile.
   */
  async end(change: StateChange): Promise<void> {
    const begun = await change.catch(() => null)
    if (!begun) return
    const k = this.keys
    await this.redis.tesseraStateEnd(k.userStateGen(begun.userId), k.userStateWriting(begun.userId), randomUUID(), GEN_MS, begun.id).catch(() => {})
  }
}
