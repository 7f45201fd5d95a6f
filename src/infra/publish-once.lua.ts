import { logAndPublishLua } from './publish-session-event.lua.js'

// KEYS[1] once marker; ARGV[1] marker ttl (ms), ARGV[2] channel, ARGV[3] frame
// Publishes the frame unless the marker exists, and sets the marker, in one step: a
// follow-up that is repeated (a retried job, two enders) announces a thing once.
export const publishOnceLua = `
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) == false then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
`

// KEYS[1..4] and ARGV as publishSessionEventLua.
// A terminal event is logged once: the flag is set with it, and a second call returns 0.
export const publishTerminalEventLua = `
if redis.call('SET', KEYS[4], '1', 'NX', 'PXAT', ARGV[5]) == false then return 0 end
${logAndPublishLua}`
