// KEYS[1] seq counter, KEYS[2] event log stream, KEYS[3] last published state version
// ARGV[1] channel, ARGV[2] frame head (the JSON object without its closing brace),
// ARGV[3] log max length, ARGV[4] log ttl seconds, ARGV[5] seq key expiry (unix ms),
// ARGV[6] the session state version the event carries (0: none)
// ARGV[7] the admin-changes channel, ARGV[8] the session id (every logged event may be admin-visible)
// Assigns the next seq, appends the frame to the bounded log and publishes it: one step,
// so every subscriber and every replay sees the same order. A state change whose version
// is not newer than one already published lost a race after its commit: it is dropped
// (returns 0), so tabs never step back to an older state.
export const publishSessionEventLua = `
local version = tonumber(ARGV[6])
if version > 0 then
  local published = tonumber(redis.call('GET', KEYS[3]) or '0')
  if version <= published then return 0 end
  redis.call('SET', KEYS[3], version, 'PXAT', ARGV[5])
end
local seq = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
local frame = ARGV[2] .. '"seq":' .. seq .. '}'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-1', 'f', frame)
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], frame)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return seq
`
