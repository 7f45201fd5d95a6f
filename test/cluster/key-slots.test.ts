// The key layout (src/infra/keys.ts and each feature's keys.ts) keeps what one script or transaction touches in one
// Redis Cluster slot: a session's keys and channel, a user's, a username's, each deadline
// shard's. Checked with the slot function ioredis routes by.
import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import t from 'tap'
import { redisKeys } from '../../src/app.js'
import { DEADLINE_SHARDS, shardOf } from '../../src/infra/keys.js'
import { byShard } from '../../src/sessions/keys.js'

const slotOf = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number
const keys = redisKeys('tessera:')

const slotsOf = (names: string[]) => new Set(names.map(slotOf)).size

t.test("a session's keys and channel share one slot, and sessions spread over slots", async (t) => {
  const slots = new Set<number>()
  for (let i = 0; i < 50; i++) {
    const id = randomUUID()
    const names = [
      keys.sessionPresence(id),
      keys.sessionTabs(id),
      keys.sessionSeq(id),
      keys.sessionLog(id),
      keys.sessionVersion(id),
      keys.sessionChannel(id),
      keys.sessionState(id),
      keys.sessionBudget(id),
      keys.sessionEnded(id),
      keys.sessionNoticed(id),
    ]
    t.equal(slotsOf(names), 1, `session ${id}`)
    slots.add(slotOf(names[0]!))
  }
  t.ok(slots.size > 40, `50 sessions on ${slots.size} slots`)
})

t.test("a user's and a username's keys share their slot", async (t) => {
  t.equal(slotsOf([keys.userStateGen(7), keys.userStateWriting(7), keys.userChannel(7)]), 1, 'user 7')
  t.equal(slotsOf([keys.failedLogins('Ada'), keys.lockedName('ada')]), 1, 'the username, whatever its case')
})

t.test('each deadline shard is one slot; a session is always in the same shard', async (t) => {
  t.equal(keys.deadlineShards.length, DEADLINE_SHARDS)
  for (const d of keys.deadlineShards) t.equal(slotsOf([...d.lists, d.dirty]), 1, `shard ${d.shard}`)
  t.equal(new Set(keys.deadlineShards.map((d) => slotOf(d.active))).size, DEADLINE_SHARDS, 'the shards are on different slots')
  const ids = Array.from({ length: 400 }, () => randomUUID())
  for (const id of ids.slice(0, 20)) t.equal(keys.deadlines(id).shard, shardOf(id))
  const counts = [...byShard(keys, ids).values()].map((group) => group.length)
  t.equal(counts.length, DEADLINE_SHARDS, 'every shard is used')
  t.equal(
    counts.reduce((a, b) => a + b, 0),
    ids.length,
  )
})

t.test("BullMQ's keys carry one hash tag", async (t) => {
  t.equal(slotsOf([`${keys.bullPrefix}:session-ended:wait`, `${keys.bullPrefix}:idle-sweep:meta`]), 1, 'every queue in one slot')
})
