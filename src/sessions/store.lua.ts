// The sessions store's Redis scripts (store.ts defines them as commands).
import { spendChunk } from '../infra/budget.js'

// Activity is kept in two places: the session's presence hash (lastActivity, in the
// session's slot) and the sweep's deadline lists (due:active scored by last activity;
// due:idle, due:warned and due:warned-early once the sweep has flagged it) with the dirty
// set for the write-behind, in the session's deadline shard (another slot: keys.ts).
// So it is recorded in two steps: the session's step decides (activityChunk), then the
// shard's step moves the lists (activityListsLua). The presence hash is what the sweep's
// events are checked against (one is dropped once input is newer than what the sweep
// judged: infra/publish-session-event.lua.ts), so the two steps need not be one. On one
// Redis, where every key is on the same server, they are one script all the same.

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

// The shard's step. Input takes the session off the idle and warned lists and onto
// due:active at its time, unless a list holds it at that time or later already (a later
// input got here first), and marks it for the write-behind; it returns how many idle or
// warned lists held it. A forgotten session goes back on due:active unless a list holds
// it; it returns 0. A function, so that on one Redis the session's step and this one are
// one script (activityWithListsLua).
// Arguments: due:active, due:idle, due:warned, due:warned-early, dirty (one shard),
// session id, what (1 input, 2 back on the lists), the time (of the input, or the last activity).
const listsChunk = `
local function moveOnLists(active, idle, warned, warnedEarly, dirty, id, what, at)
  at = tonumber(at)
  local lists = {active, idle, warned, warnedEarly}
  if tonumber(what) == 1 then
    for i = 1, 4 do
      local score = redis.call('ZSCORE', lists[i], id)
      if score and tonumber(score) >= at then return 0 end
    end
    redis.call('ZADD', active, at, id)
    local removed = redis.call('ZREM', idle, id) + redis.call('ZREM', warned, id) + redis.call('ZREM', warnedEarly, id)
    redis.call('SADD', dirty, id)
    return removed
  end
  for i = 1, 4 do
    if redis.call('ZSCORE', lists[i], id) then return 0 end
  end
  redis.call('ZADD', active, at, id)
  return 0
end
`

// KEYS: due:active, due:idle, due:warned, due:warned-early, dirty (one shard)
// ARGV: session id, what (1 input, 2 back on the lists), the time
export const activityListsLua = `${listsChunk}
return moveOnLists(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2], ARGV[3])
`

// On one Redis (not a Cluster, where the shard has a slot of its own) both steps in one
// script: one round trip for every request and input that records activity, not two.
// KEYS: presence, the session's ended flag, then the shard's five keys as above
// ARGV: as activityLua's, then the session id
// Returns activityLua's answer with how many idle or warned lists held the session after it.
export const activityWithListsLua = `${activityChunk}${listsChunk}
local r = activity(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
r[6] = 0
if r[5] == 1 then r[6] = moveOnLists(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[7], 1, ARGV[2])
elseif r[5] == 2 then r[6] = moveOnLists(KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[7], 2, r[1]) end
return r
`

/** Where a key template (a key function called with this) takes the session's or the user's id. */
export const ID_PLACEHOLDER = '@@'

// On one Redis: the token cache's record and one request of its session's API budget, in
// one step (auth/rate-limits.ts), counted as the rate limit counts it once it has the record
// (infra/budget.ts). A token the cache does not hold spends nothing here.
// KEYS: the token cache entry; ARGV: the session budget key's template, window ms
// Returns {record JSON, requests in the window, ms left of it}, or {} when the cache holds no record.
export const recordSpendingLua = `${spendChunk}
local raw = redis.call('GET', KEYS[1])
if not raw then return {} end
local budget = string.gsub(ARGV[1], '${ID_PLACEHOLDER}', cjson.decode(raw).id)
local count, ttl = spend(budget, ARGV[2])
return {raw, count, ttl}
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
