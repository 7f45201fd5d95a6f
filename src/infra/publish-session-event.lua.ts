// A new numbering for a session whose counter and log Redis has lost, from Redis's clock
// in ms: above every seq the session had, as no session averages an event a millisecond.
// Started by whoever needs the seq first, this script or a read (event-log.ts).
export const newNumberingLua = `
local function newNumbering()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end`

/** How many of the latest log entries a publish looks through for its own id (see below). */
const RECENT_IDS = 16

// KEYS[1] seq counter, KEYS[2] event log stream, KEYS[3] last published state version, KEYS[4] the session's ended flag,
// KEYS[5] the session's channel (declared as a key: on a Cluster it is a shard channel, whose slot Redis 7 checks as a key's)
// ARGV[1] 'S' to publish by SPUBLISH (a Cluster), 'P' by PUBLISH (one Redis), ARGV[2] frame head (the JSON object without its closing brace),
// ARGV[3] log max length, ARGV[4] log ttl seconds, ARGV[5] seq key expiry (unix ms),
// ARGV[6] the session state version the event carries (0: none)
// ARGV[7] the admin-changes channel, ARGV[8] the session id (every logged event may be admin-visible)
// ARGV[9] '1' when the event is the whole state at that version (session.state), else '0'
// ARGV[10] the event's id, unique to this call
// Assigns the next seq, appends the frame to the bounded log and publishes it: one step,
// so every subscriber and every replay sees the same order. On a Cluster the frame goes out
// by SPUBLISH (sharded pub/sub: only the primary that owns the session's slot has it, and
// tells the shard's subscribers); on one Redis by PUBLISH. The admin change goes out by a
// classic PUBLISH, which every node's admin feed hears. A state change whose version
// is not newer than one already published lost a race after its commit: it is dropped
// (returns 0), so tabs never step back to an older state. The whole state may also be as
// new as what was published (a role change does not move the version).
//
// Everything that can fail is read and checked before anything is written. The next seq
// follows both the counter and the log's last entry: a counter lost (evicted, expired)
// while the log survived continues after the log instead of making XADD refuse a used id,
// which would burn the seq and fail the request after its commit.
//
// A log whose counter and entries are both gone (Redis restarted empty, flushed, evicted:
// every session's counter is made at login) gets a new numbering (above): the session's
// tabs see a gap and resync (or learn that the session ended) instead of dropping the
// events as already sent.
//
// The same call run twice (ioredis sends a command again after a reconnect when its answer
// was lost) publishes once: the log keeps each event's id, and an id among the last
// entries answers with the seq it was given. A call's second run comes first thing on the
// new connection, so only what other connections published meanwhile lies between.
//
// The terminal event is the last one a log holds: an event that comes after it (a switch
// committed just before the ending, published just after) is dropped too. Else it would
// set the seq counter to live for the rest of the lifetime of a session that has ended
// (found by the soak, test/system).
export const logAndPublishLua = `${newNumberingLua}
local recent = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ${RECENT_IDS})
for _, entry in ipairs(recent) do
  if entry[2][4] == ARGV[10] then return tonumber(string.match(entry[1], '^%d+')) end
end
local version = tonumber(ARGV[6])
local published = tonumber(redis.call('GET', KEYS[3]) or '0')
if version > 0 and (version < published or (version == published and ARGV[9] ~= '1')) then return 0 end
local counted = redis.call('GET', KEYS[1])
local seq = tonumber(counted or '0')
local last = recent[1]
if last then
  local logged = tonumber(string.match(last[1], '^%d+'))
  if logged > seq then seq = logged end
elseif not counted then
  seq = newNumbering()
end
seq = seq + 1
if version > 0 then redis.call('SET', KEYS[3], version, 'PXAT', ARGV[5]) end
redis.call('SET', KEYS[1], seq, 'PXAT', ARGV[5])
local frame = ARGV[2] .. '"seq":' .. seq .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-1', 'f', frame, 'e', ARGV[10])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if ARGV[1] == 'S' then redis.call('SPUBLISH', KEYS[5], frame) else redis.call('PUBLISH', KEYS[5], frame) end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return seq
`

export const publishSessionEventLua = `
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
${logAndPublishLua}`

// KEYS[1..5] and ARGV[1..10] as publishSessionEventLua; KEYS[6] the session's presence hash,
// ARGV[11] the session id, ARGV[12] the last activity the sweep moved it on with (its score).
// Publishes only while no input is newer than that: an event of the idle sweep must not
// follow the session.active of input that has moved it on since. Input writes the presence
// hash (the session's slot) before it moves the deadline lists (another slot), so the check
// and the publish are one step in the session's slot (sessions/store.lua.ts).
export const publishWhileListedLua = `
local hot = redis.call('HGET', KEYS[6], 'lastActivity')
if hot and tonumber(hot) > tonumber(ARGV[12]) then return 0 end
${publishSessionEventLua}`
