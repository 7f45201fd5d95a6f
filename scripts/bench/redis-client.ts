// What a Redis command costs Tessera's process, by how ioredis sends it (issue 16): the CPU of
// this process per script call, for batches of 1, 10 and 100 calls issued at once, sent
//   - with ioredis's auto-pipelining and the scripts defined by defineCommand, as Tessera did
//     until issue 16's sixth session (every batch makes an ioredis pipeline, which
//     copies every defined script onto itself);
//   - written at once, one socket write per command (Tessera on one Redis now);
//   - written at once inside inOneWrite (one corked socket write per batch: the tabs seen in
//     one turn of the event loop).
// The Redis server's own CPU is not counted. Prints a table; writes nothing to the docs.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { inOneWrite, redisOptions } from '../../src/infra/redis.js'
import { benchRedisUrl, onCleanup, parseFlags, runBenchmark } from './harness.js'
import { progress } from './load-process.js'
import { textTable } from './stats.js'

const NAME = 'redis-client'

const defaults = { calls: 20_000, rounds: 5, scripts: 23 }
const help = {
  calls: 'script calls measured per round',
  rounds: 'rounds per way and batch size (the table shows the median)',
  scripts: 'scripts defined on the connection (Tessera defines 23 on its own)',
}

type Way = { name: string; autoPipelining: boolean; corked: boolean }

const WAYS: Way[] = [
  { name: 'auto-pipelining (Tessera before)', autoPipelining: true, corked: false },
  { name: 'written at once (Tessera now)', autoPipelining: false, corked: false },
  { name: 'written at once, corked per batch (inOneWrite)', autoPipelining: false, corked: true },
]

const BATCHES = [1, 10, 100]

async function main() {
  const flags = parseFlags(NAME, defaults, help)
  const key = `tessera-bench:${randomBytes(5).toString('hex')}:k`
  const rows: string[][] = []
  for (const way of WAYS) {
    const redis = new Redis({ ...redisOptions(benchRedisUrl()), enableAutoPipelining: way.autoPipelining, connectionName: 'tessera-bench' })
    onCleanup(async () => redis.disconnect())
    await redis.connect()
    for (let i = 0; i < flags.scripts; i++) redis.defineCommand(`benchScript${i}`, { numberOfKeys: 1, lua: `return redis.call('EXISTS', KEYS[1]) + ${i}` })
    const call = (): Promise<unknown> => Reflect.apply(Reflect.get(redis, 'benchScript0'), redis, [key])
    const row = [way.name]
    for (const batch of BATCHES) {
      const sendBatch = () => (way.corked ? inOneWrite(redis, () => Array.from({ length: batch }, call)) : Array.from({ length: batch }, call))
      const round = async (calls: number) => {
        const before = process.cpuUsage()
        for (let done = 0; done < calls; done += batch) await Promise.all(sendBatch())
        const used = process.cpuUsage(before)
        return (used.user + used.system) / calls
      }
      await round(Math.min(2_000, flags.calls)) // warm-up: JIT, the scripts loaded
      const perCall: number[] = []
      for (let r = 0; r < flags.rounds; r++) perCall.push(await round(flags.calls))
      perCall.sort((a, b) => a - b)
      const median = perCall[Math.floor(perCall.length / 2)]!
      progress(NAME, `${way.name}, batches of ${batch}: ${median.toFixed(1)} µs per call (rounds: ${perCall.map((v) => v.toFixed(1)).join(', ')})`)
      row.push(median.toFixed(1))
    }
    rows.push(row)
    redis.disconnect()
  }
  console.log(`\nCPU of this process per script call, µs (median of ${flags.rounds} rounds of ${flags.calls} calls; ${flags.scripts} scripts defined)\n`)
  console.log(textTable(['way', ...BATCHES.map((b) => `batches of ${b}`)], rows))
}

void runBenchmark(NAME, main)
