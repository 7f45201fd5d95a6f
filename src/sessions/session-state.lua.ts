// GET /api/session_state in one round trip: the API rate limit, the token lookup, the
// activity check (as a passive request makes it), the seq, the tabs and the cached platform
// state, all in one script. It spends the API budget exactly as every other route does
// (auth/rate-limits.ts: same key, same INCR / PEXPIRE), so the budget stays shared with
// them and across nodes. Like the activity script, it reaches keys of other slots (the
// deadline lists, the budget): the layout would need two steps on a Redis Cluster.
//
// KEYS[1] token cache key, KEYS[2..6] due:active, due:idle, due:warned, due:warned-early, dirty
// ARGV[1] key prefix, ARGV[2] the API budget's key prefix, ARGV[3] budget max, ARGV[4] budget window ms,
// ARGV[5] the budget key when the token cache holds no record ('' : spend nothing, answer 0),
// ARGV[6] now ms, ARGV[7] idle timeout ms, ARGV[8] tabs heard from since (ms)
//
// Returns, by its first element:
//   {0}                             no cached record and no budget key given: nothing spent
//   {4, count, ttl}                 no cached record, the budget of ARGV[5] spent
//   {2, count, ttl}                 over the budget
//   {1, count, ttl, record}         a record the service must look at (ended, disabled, idle over)
//   {3, count, ttl, record, lastActivity, known, seq, tabs, state entry, generation, writing}
import { activityChunk } from './store.lua.js'

export const sessionStateLua = `${activityChunk}
local raw = redis.call('GET', KEYS[1])
local rec
local budget = ARGV[5]
if raw then
  rec = cjson.decode(raw)
  budget = 's:' .. rec.id
elseif budget == '' then
  return {0}
end
budget = ARGV[2] .. budget
local count = redis.call('INCR', budget)
local ttl = tonumber(ARGV[4])
if count == 1 then redis.call('PEXPIRE', budget, ARGV[4]) else ttl = redis.call('PTTL', budget) end
if count > tonumber(ARGV[3]) then return {2, count, ttl} end
if not raw then return {4, count, ttl} end
if rec.status ~= 'active' or rec.userDisabled == true then return {1, count, ttl, raw} end
local s = ARGV[1] .. '{' .. rec.id .. '}'
local act = activity(s .. ':presence', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], s .. ':ended', rec.id, ARGV[6], ARGV[6], ARGV[7], rec.lastActivity, '0', rec.expiresAt)
if act[3] ~= 0 then return {1, count, ttl, raw} end
local u = ARGV[1] .. 'user:' .. string.format('%d', rec.userId)
return {
  3, count, ttl, raw, act[1], act[4],
  redis.call('GET', s .. ':seq') or '0',
  redis.call('ZRANGEBYSCORE', s .. ':tabs', ARGV[8], '+inf'),
  redis.call('GET', s .. ':state') or '',
  redis.call('GET', u .. ':state-gen') or '',
  redis.call('EXISTS', u .. ':state-writing'),
}
`
