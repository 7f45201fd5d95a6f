// The sessions store's Redis scripts (store.ts defines them as commands).

// Activity is kept in two places at once: the session's presence hash (lastActivity) and
// the sweep's deadline lists (due:active scored by last activity; due:idle, due:warned and
// due:warned-early once the sweep has flagged it), plus a dirty set for the write-behind.
// KEYS: presence, due:active, due:idle, due:warned, due:warned-early, dirty, the session's ended flag
export const ACTIVITY_KEYS = 7

// Records activity, in one step with the checks, so that no node can revive a session that
// has ended or whose idle deadline has passed (the caller then ends it): input that comes
// too late does not count. With nothing to write, it puts a session that Redis forgot back
// on its deadline list. A function, so that the session_state script does the same.
// Arguments: the keys above, then session id, now, activity time, idle timeout ms, fallback
// last activity, write ('1'/'0'), expire-at ms.
// Returns { last activity before, flags removed (idle, warned), outcome (0 recorded, 1 idle over, 2 ended), 1 when Redis knew the last activity }.
export const activityChunk = `
local function activity(presence, dueActive, dueIdle, dueWarned, dueWarnedEarly, dirty, ended, id, now, at, idleTimeout, fallback, write, expireAt)
  if redis.call('EXISTS', ended) == 1 then return {0, 0, 2, 0} end
  local hot = redis.call('HGET', presence, 'lastActivity')
  local last = tonumber(hot or fallback)
  local known = 0
  if hot then known = 1 end
  if tonumber(now) - last >= tonumber(idleTimeout) then return {last, 0, 1, known} end
  local wasIdle = 0
  if write == '1' and tonumber(at) > last then
    redis.call('HSET', presence, 'lastActivity', at)
    redis.call('PEXPIREAT', presence, expireAt)
    redis.call('ZADD', dueActive, at, id)
    wasIdle = redis.call('ZREM', dueIdle, id) + redis.call('ZREM', dueWarned, id) + redis.call('ZREM', dueWarnedEarly, id)
    redis.call('SADD', dirty, id)
  elseif not hot then
    redis.call('HSET', presence, 'lastActivity', last)
    redis.call('PEXPIREAT', presence, expireAt)
    if not (redis.call('ZSCORE', dueIdle, id) or redis.call('ZSCORE', dueWarned, id) or redis.call('ZSCORE', dueWarnedEarly, id)) then
      redis.call('ZADD', dueActive, last, id)
    end
  end
  return {last, wasIdle, 0, known}
end
`

// ARGV: session id, now, activity time, idle timeout ms, fallback last activity, write (1/0), expire-at ms
export const activityLua = `${activityChunk}
return activity(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
`

// Cache-aside fill: only where the cache holds nothing. An ending writes the ended record
// (SET, not delete), so a request that read the row just before the ending cannot put the
// stale "active" record back. An active session goes back on the lifetime list in the same step.
// KEYS: token key, due:lifetime; ARGV: record JSON, ttl ms, session id, expires-at ms (0: ended)
export const fillCacheLua = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if ARGV[4] ~= '0' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
return 1
`

// Refresh of a live record (role or account changed): over whatever the cache holds, except
// an ended record, which an ending may have written since the refresh read its rows.
// KEYS: token key; ARGV: record JSON, ttl ms
export const refreshCacheLua = `
local held = redis.call('GET', KEYS[1])
if held and string.find(held, '"status":"ended"', 1, true) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`
