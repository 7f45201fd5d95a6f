// Reading a session's event log for resume: exactly the events after a given seq, or a
// verdict that the log can no longer cover the gap.
import type { Redis, Result } from 'ioredis'
import type { InfraKeys } from './keys.js'
import { newNumberingLua } from './publish-session-event.lua.js'

// The session's current seq. When Redis has lost both the counter and the log, the new
// numbering starts here, as the publish script would start it, so that the seq a tab is
// given as its baseline and the seq of the next event agree. Unless an event follows, it
// lapses with the event log, and a later one starts above it. A Lua function, so that a
// tab's hello step (presence/service.ts) reads the seq in the same step as it opens the tab.
export const currentSeqFunctionLua = `${newNumberingLua}
local function currentSeq(seqKey, logKey, ttlMs)
  local counted = redis.call('GET', seqKey)
  if counted then return tonumber(counted) end
  local last = redis.call('XREVRANGE', logKey, '+', '-', 'COUNT', 1)[1]
  if last then return tonumber(string.match(last[1], '^%d+')) end
  local seq = newNumbering()
  redis.call('SET', seqKey, seq, 'PX', ttlMs)
  return seq
end`

// KEYS[1] seq counter, KEYS[2] event log; ARGV[1] how long (ms) a numbering started here lives
const currentSeqLua = `${currentSeqFunctionLua}
return currentSeq(KEYS[1], KEYS[2], ARGV[1])
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** currentSeqLua, defined by defineLogCommands: the session's current seq. */
    tesseraCurrentSeq(seqKey: string, logKey: string, ttlMs: number): Result<number, Context>
  }
}

/** Makes the reads below available on this connection (once, by their owner). */
export function defineLogCommands(redis: Redis) {
  redis.defineCommand('tesseraCurrentSeq', { numberOfKeys: 2, lua: currentSeqLua })
}

/** Where a session's log is and how long a new numbering started by a read lives. */
export interface LogPlace {
  redis: Redis
  keys: InfraKeys
  ttlMs: number
}

/** The session's current seq (a new numbering when Redis lost it: see currentSeqLua). */
function currentSeqOf({ redis, keys, ttlMs }: LogPlace, sessionId: string) {
  return redis.tesseraCurrentSeq(keys.sessionSeq(sessionId), keys.sessionLog(sessionId), ttlMs)
}

export interface LogRead {
  /** The session's current seq. */
  current: number
  /** Frames after the requested seq, in order. */
  frames: { seq: number; frame: string }[]
  /** False when the log cannot cover the gap (trimmed, expired, lost): send a resync. */
  complete: boolean
}

type Entry = [id: string, fields: string[]]

// The reads below send their commands one by one, not as a pipeline of their own: they go
// out in order on the one connection all the same, and an ioredis pipeline costs more CPU than
// the writes it saves for so few commands (it copies every defined script onto itself).

export async function readEventLog(log: LogPlace, sessionId: string, afterSeq: number, max: number): Promise<LogRead> {
  const [current, entries] = (await Promise.all([
    currentSeqOf(log, sessionId),
    log.redis.xrange(log.keys.sessionLog(sessionId), `${afterSeq + 1}-0`, '+', 'COUNT', max + 1),
  ])) as [number, Entry[]]
  const frames = entries.map(([id, fields]) => ({ seq: Number(id.split('-')[0]), frame: fields[1]! }))
  if (afterSeq > current) return { current, frames: [], complete: false }
  if (afterSeq === current) return { current, frames: [], complete: true }
  const complete = frames.length > 0 && frames[0]!.seq === afterSeq + 1 && frames.at(-1)!.seq >= current
  return { current, frames: complete ? frames.filter((f) => f.seq <= current) : [], complete }
}

/** The end of a session's log: its seq counter and its last logged event (the terminal one, for a session that has ended). */
export async function logEnd(log: LogPlace, sessionId: string): Promise<{ counter: number; last: { seq: number; frame: string } | null }> {
  const [counter, entries] = (await Promise.all([
    currentSeqOf(log, sessionId),
    log.redis.xrevrange(log.keys.sessionLog(sessionId), '+', '-', 'COUNT', 1),
  ])) as [number, Entry[]]
  const entry = entries[0]
  return { counter, last: entry ? { seq: Number(entry[0].split('-')[0]), frame: entry[1][1]! } : null }
}

/** The seq a frame carries: frames end in `"seq":N}` (bus.ts builds them that way). */
export function seqOf(frame: string): number {
  const i = frame.lastIndexOf('"seq":')
  return i < 0 ? 0 : Number.parseInt(frame.slice(i + 6), 10)
}
