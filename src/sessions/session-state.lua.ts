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
import { activityChunk } from './store.lua.js'

export const sessionStateLua = `${activityChunk}
local count = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[2])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) else ttl = redis.call('PTTL', KEYS[1]) end
if count > tonumber(ARGV[1]) then return {2, count, ttl} end
local act = activity(KEYS[2], KEYS[3], ARGV[3], ARGV[3], ARGV[4], ARGV[5], '0', ARGV[6])
if act[3] ~= 0 then return {1, count, ttl} end
return {
  3, count, ttl, act[1], act[4],
  redis.call('GET', KEYS[4]) or '0',
  redis.call('ZRANGEBYSCORE', KEYS[5], ARGV[7], '+inf'),
  redis.call('GET', KEYS[6]) or '',
  act[5],
}
`
