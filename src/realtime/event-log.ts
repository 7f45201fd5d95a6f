// Reading a session's event log for resume: exactly the events after a given seq, or a
// verdict that the log can no longer cover the gap.
import type { Redis } from 'ioredis'
import type { RedisKeys } from '../infra/keys.js'

export interface LogRead {
  /** The session's current seq. */
  current: number
  /** Frames after the requested seq, in order. */
  frames: { seq: number; frame: string }[]
  /** False when the log cannot cover the gap (trimmed, expired, lost): send a resync. */
  complete: boolean
}

type Entry = [id: string, fields: string[]]

/** The replies of a pipeline; throws the first failure (exec reports them, it does not throw). */
function replies(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('the Redis pipeline was aborted')
  for (const [err] of results) if (err) throw err
  return results.map(([, value]) => value)
}

export async function readEventLog(redis: Redis, keys: RedisKeys, sessionId: string, afterSeq: number, max: number): Promise<LogRead> {
  const [seqRaw, entries] = replies(
    await redis
      .pipeline()
      .get(keys.sessionSeq(sessionId))
      .xrange(keys.sessionLog(sessionId), `${afterSeq + 1}-0`, '+', 'COUNT', max + 1)
      .exec(),
  ) as [string | null, Entry[]]
  const current = Number(seqRaw ?? 0)
  const frames = entries.map(([id, fields]) => ({ seq: Number(id.split('-')[0]), frame: fields[1]! }))
  if (afterSeq > current) return { current, frames: [], complete: false }
  if (afterSeq === current) return { current, frames: [], complete: true }
  const complete = frames.length > 0 && frames[0]!.seq === afterSeq + 1 && frames.at(-1)!.seq >= current
  return { current, frames: complete ? frames.filter((f) => f.seq <= current) : [], complete }
}

/** The end of a session's log: its seq counter and its last logged event (the terminal one, for a session that has ended). */
export async function logEnd(redis: Redis, keys: RedisKeys, sessionId: string): Promise<{ counter: number; last: { seq: number; frame: string } | null }> {
  const [seqRaw, entries] = replies(
    await redis.pipeline().get(keys.sessionSeq(sessionId)).xrevrange(keys.sessionLog(sessionId), '+', '-', 'COUNT', 1).exec(),
  ) as [string | null, Entry[]]
  const entry = entries[0]
  return { counter: Number(seqRaw ?? 0), last: entry ? { seq: Number(entry[0].split('-')[0]), frame: entry[1][1]! } : null }
}

/** The seq a frame carries: frames end in `"seq":N}` (bus.ts builds them that way). */
export function seqOf(frame: string): number {
  const i = frame.lastIndexOf('"seq":')
  return i < 0 ? 0 : Number.parseInt(frame.slice(i + 6), 10)
}
