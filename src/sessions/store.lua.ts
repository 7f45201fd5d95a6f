// The sessions store's Redis scripts (store.ts defines them as commands).

// Activity is kept in two places: the session's presence hash (lastActivity, in the
// session's slot) and the sweep's deadline lists (due:active scored by last activity;
// due:idle, due:warned and due:warned-early once the sweep has flagged it) with the dirty
// set for the write-behind, in the session's deadline shard (another slot: keys.ts).
// So it is recorded in two steps: the session's step decides (activityChunk), then the
// shard's step moves the lists (activityListsLua). The presence hash is what the sweep's
// events are checked against (one is dropped once input is newer than what the sweep
// judged: infra/publish-session-event.lua.ts), so the two steps need not be one.

// The session's step. It records activity in one step with the checks, so that no node can
// revive a session that has ended or whose idle deadline has passed (the caller then ends
// it): input that comes too late does not count. A function, so that the session_state
// script does the same.
// Arguments: presence, the session's ended flag, now, activity time, idle timeout ms,
// fallback last activity, write ('1'/'0'), expire-at ms.
// Returns { last activity before, 0, outcome (0 recorded, 1 idle over, 2 ended), 1 when
// Redis knew the last activity, what the lists need (0 nothing; 1 input at the activity
// time; 2 a session Redis forgot, back on due:active at its last activity) }.
export const activityChunk = `
local function activity(presence, ended, now, at, idleTimeout, fallback, write, expireAt)
  if redis.call('EXISTS', ended) == 1 then return {0, 0, 2, 0, 0} end
  local hot = redis.call('HGET', presence, 'lastActivity')
  local last = tonumber(hot or fallback)
  local known = 0
  if hot then known = 1 end
  if tonumber(now) - last >= tonumber(idleTimeout) then return {last, 0, 1, known, 0} end
  if write == '1' and tonumber(at) > last then
    redis.call('HSET', presence, 'lastActivity', at)
    redis.call('PEXPIREAT', presence, expireAt)
    return {last, 0, 0, known, 1}
  elseif not hot then
    redis.call('HSET', presence, 'lastActivity', last)
    redis.call('PEXPIREAT', presence, expireAt)
    return {last, 0, 0, known, 2}
  end
  return {last, 0, 0, known, 0}
end
`

// KEYS: presence, the session's ended flag
// ARGV: now, activity time, idle timeout ms, fallback last activity, write (1/0), expire-at ms
export const activityLua = `${activityChunk}
return activity(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
`

// The shard's step. KEYS: due:active, due:idle, due:warned, due:warned-early, dirty (one shard)
// ARGV: session id, what (1 input, 2 back on the lists), the time (of the input, or the last activity)
// Input takes the session off the idle and warned lists and onto due:active at its time,
// unless a list holds it at that time or later already (a later input got here first), and
// marks it for the write-behind; it returns how many idle or warned lists held it. A
// forgotten session goes back on due:active unless a list holds it; it returns 0.
export const activityListsLua = `
local id = ARGV[1]
local at = tonumber(ARGV[3])
if ARGV[2] == '1' then
  for i = 1, 4 do
    local score = redis.call('ZSCORE', KEYS[i], id)
    if score and tonumber(score) >= at then return 0 end
  end
  redis.call('ZADD', KEYS[1], at, id)
  local removed = redis.call('ZREM', KEYS[2], id) + redis.call('ZREM', KEYS[3], id) + redis.call('ZREM', KEYS[4], id)
  redis.call('SADD', KEYS[5], id)
  return removed
end
if not (redis.call('ZSCORE', KEYS[1], id) or redis.call('ZSCORE', KEYS[2], id) or redis.call('ZSCORE', KEYS[3], id) or redis.call('ZSCORE', KEYS[4], id)) then
  redis.call('ZADD', KEYS[1], at, id)
end
return 0
`

// Cache-aside fill: only where the cache holds nothing. An ending writes the ended record
// (SET, not delete), so a request that read the row just before the ending cannot put the
// stale "active" record back. An active session then goes back on the lifetime list (its
// shard's slot: a step of its own, store.ts).
// KEYS: token key; ARGV: record JSON, ttl ms
export const fillCacheLua = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
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
