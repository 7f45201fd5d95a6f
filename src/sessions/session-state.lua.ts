// GET /api/session_state's step in the session's slot: the API budget (the session's own
// counter, spent as every other route spends it: infra/budget.ts), the activity check (as a
// passive request makes it), the seq, the tabs and the cached platform state entry. The
// token lookup before it (the token cache is keyed by the token alone) and the user's state
// generation (the user's slot) are read apart: a Redis Cluster refuses a script that
// reaches keys of several slots (state-read.ts).
//
// KEYS[1] the session's budget, KEYS[2] presence, KEYS[3] ended flag, KEYS[4] seq, KEYS[5] tabs, KEYS[6] state entry
// ARGV[1] budget max, ARGV[2] budget window ms, ARGV[3] now ms, ARGV[4] idle timeout ms,
// ARGV[5] fallback last activity, ARGV[6] presence expire-at ms, ARGV[7] tabs heard from since (ms)
//
// Returns, by its first element:
//   {2, count, ttl}                 over the budget
//   {1, count, ttl}                 the service must look at the record (ended, idle over)
//   {3, count, ttl, lastActivity, known, seq, tabs, state entry, lists}
//     (lists 2: the session goes back on its deadline list, store.lua.ts)
import { spendChunk } from '../infra/budget.js'
import { activityChunk, ID_PLACEHOLDER } from './store.lua.js'

// The step, as functions both scripts share. spend() counts one request of the API budget
// (infra/budget.ts): { requests in the window, ms left of it }.
const sessionStepChunk = `${activityChunk}${spendChunk}
local function sessionStep(budget, presence, ended, seq, tabs, state, max, window, now, idleTimeout, fallback, expireAt, since)
  local count, ttl = spend(budget, window)
  if count > tonumber(max) then return {2, count, ttl} end
  local act = activity(presence, ended, now, now, idleTimeout, fallback, '0', expireAt)
  if act[3] ~= 0 then return {1, count, ttl} end
  return {
    3, count, ttl, act[1], act[4],
    redis.call('GET', seq) or '0',
    redis.call('ZRANGEBYSCORE', tabs, since, '+inf'),
    redis.call('GET', state) or '',
    act[5],
  }
end
`

export const sessionStateLua = `${sessionStepChunk}
return sessionStep(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
`

// On one Redis (not a Cluster) the token lookup, the session's step and the user's state
// generation are one script: one round trip and one command per request instead of four.
// The session's and the user's keys follow from the cached record, so they are passed as
// templates (the key functions of keys.ts called with ID_PLACEHOLDER).
//
// KEYS[1] the token cache entry
// ARGV[1] budget max, ARGV[2] budget window ms, ARGV[3] now ms, ARGV[4] idle timeout ms,
// ARGV[5] tabs heard from since (ms), ARGV[6..11] templates of the session's budget,
// presence, ended flag, seq, tabs and state entry, ARGV[12..13] of the user's state
// generation and write mark
//
// Returns {0} when the cache holds no record; else what sessionStateLua returns, with the
// record's JSON, the generation ('' when none) and the write mark (0/1) after it:
//   {2, count, ttl}   {1, count, ttl, record}
//   {3, count, ttl, lastActivity, known, seq, tabs, state entry, lists, record, gen, writing}
export const sessionStateOneStepLua = `${sessionStepChunk}
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local rec = cjson.decode(raw)
local function key(template, id) return (string.gsub(template, '${ID_PLACEHOLDER}', tostring(id))) end
local id = rec.id
if rec.status ~= 'active' or rec.userDisabled == true then
  local count, ttl = spend(key(ARGV[6], id), ARGV[2])
  if count > tonumber(ARGV[1]) then return {2, count, ttl} end
  return {1, count, ttl, raw}
end
local step = sessionStep(key(ARGV[6], id), key(ARGV[7], id), key(ARGV[8], id), key(ARGV[9], id), key(ARGV[10], id), key(ARGV[11], id),
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], rec.lastActivity, rec.expiresAt, ARGV[5])
if step[1] == 2 then return step end
if step[1] == 1 then return {1, step[2], step[3], raw} end
step[10] = raw
step[11] = redis.call('GET', key(ARGV[12], string.format('%d', rec.userId))) or ''
step[12] = redis.call('EXISTS', key(ARGV[13], string.format('%d', rec.userId)))
return step
`
