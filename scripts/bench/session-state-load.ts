// Load generator of the session_state benchmark (a child process; see load-process.ts):
// a closed loop of N keep-alive connections, and an open loop at a fixed rate. undici's
// Pool keeps exactly N connections alive and costs the client far less per request than
// node:http, so the bare-route baseline measures the server rather than the client.
import { Pool } from 'undici'
import { progress, serveLoad, USER_AGENT } from './load-process.js'
import { summarize } from './stats.js'

const name = 'session_state load'

interface Target {
  label: string
  address: string
  path: string
  /** One cookie per loop (loop i sends cookies[i % length]). */
  cookies: string[]
}

function requester(t: Target, connections: number) {
  const pool = new Pool(`http://${t.address}`, { connections, pipelining: 1, keepAliveTimeout: 60_000 })
  const errors = new Map<string, number>()
  const error = (key: string) => errors.set(key, (errors.get(key) ?? 0) + 1)
  /** One GET; its latency in ms, or NaN when it failed. */
  const get = async (i: number): Promise<number> => {
    const t0 = performance.now()
    try {
      const { statusCode, body } = await pool.request({
        method: 'GET',
        path: t.path,
        headers: { cookie: t.cookies[i % t.cookies.length]!, 'user-agent': USER_AGENT, accept: 'application/json' },
      })
      await body.text()
      if (statusCode !== 200) {
        error(`HTTP ${statusCode}`)
        return Number.NaN
      }
      return performance.now() - t0
    } catch (err) {
      error((err as { code?: string }).code ?? (err as Error).message)
      return Number.NaN
    }
  }
  return { get, errors, close: () => pool.close() }
}

async function closedLoop(args: Target & { connections: number; seconds: number; warmup: number }) {
  const r = requester(args, args.connections)
  const latencies: number[] = []
  let measuring = false
  let stop = false
  // Every request, warm-up included: the server's CPU and writes are divided by this.
  let completed = 0
  const loop = async (i: number) => {
    while (!stop) {
      const ms = await r.get(i)
      completed++
      if (measuring && !Number.isNaN(ms)) latencies.push(ms)
    }
  }
  const loops = Array.from({ length: args.connections }, (_, i) => loop(i))
  await new Promise((resolve) => setTimeout(resolve, args.warmup * 1000))
  r.errors.clear()
  measuring = true
  const started = performance.now()
  let last = 0
  const ticker = setInterval(() => {
    const n = latencies.length
    progress(name, `${args.label}: ${n - last} req/s, ${n} so far`)
    last = n
  }, 1000)
  await new Promise((resolve) => setTimeout(resolve, args.seconds * 1000))
  measuring = false
  const seconds = (performance.now() - started) / 1000
  clearInterval(ticker)
  stop = true
  await Promise.all(loops)
  await r.close()
  const errorCount = [...r.errors.values()].reduce((a, b) => a + b, 0)
  return { requests: latencies.length, completed, seconds, rps: latencies.length / seconds, latency: summarize(latencies), errors: Object.fromEntries(r.errors), errorCount }
}

async function fixedRate(args: Target & { connections: number; rate: number; seconds: number }) {
  const r = requester(args, args.connections)
  const latencies: number[] = []
  const total = Math.round(args.rate * args.seconds)
  const inFlight = new Set<Promise<void>>()
  let sent = 0
  const started = performance.now()
  await new Promise<void>((resolve) => {
    // Open loop: requests leave on schedule whether or not earlier ones have been answered.
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * args.rate))
      while (sent < due) {
        const p = r.get(sent++).then((ms) => {
          if (!Number.isNaN(ms)) latencies.push(ms)
          inFlight.delete(p)
        })
        inFlight.add(p)
      }
      if (sent >= total) {
        clearInterval(timer)
        resolve()
      }
    }, 2)
  })
  await Promise.all(inFlight)
  const seconds = (performance.now() - started) / 1000
  await r.close()
  const errorCount = [...r.errors.values()].reduce((a, b) => a + b, 0)
  progress(name, `${args.label}: ${sent} requests at ${args.rate}/s, ${errorCount} errors`)
  return { requests: sent, completed: sent, seconds, rps: sent / seconds, latency: summarize(latencies), errors: Object.fromEntries(r.errors), errorCount }
}

serveLoad({ closedLoop, fixedRate })
