// An alert is stored in PostgreSQL and its delivery queued in Redis: two steps. A process
// that dies between them must not lose the delivery (quality.md R4: an alert delivered).
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build, startWorkers, testRedisUrl } from '../helpers/app.js'
import { spawnTessera } from '../helpers/process.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { until } from '../helpers/wait.js'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A webhook receiver on 127.0.0.1:0 that keeps the delivery id of every POST. */
async function receiver(t: Teardown) {
  const deliveries: string[] = []
  const server = createServer((req, res) => {
    deliveries.push(String(req.headers['x-tessera-delivery']))
    req.resume()
    req.on('end', () => res.writeHead(204).end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, deliveries }
}

t.test('an alert whose process was killed before it queued the delivery is delivered all the same', async (t) => {
  // issue 12, defect 17
  const hook = await receiver(t)
  const env = { ALERT_WEBHOOK_URL: hook.url, FAILED_LOGIN_THRESHOLD: '1', FAILED_LOGIN_LOCKOUT_SECONDS: '0' }
  const app = await build(t, env)
  await app.user('ada')

  // A real API process, its Redis through a proxy that holds back the delivery's enqueue.
  const redis = await TcpProxy.to(t, testRedisUrl())
  const enqueueing = redis.hold((pipe, chunk) => pipe.sent.includes('tessera-queues') && chunk.includes('failed_login_threshold'))
  const api = await spawnTessera(t, app, { ...env, ROLE: 'api', REDIS_URL: redis.url(testRedisUrl()) })
  // A wrong password reaches the threshold (1): the alert is stored, its enqueue held…
  void fetch(`${api.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'ada', password: 'wrong-password' }),
  }).catch(() => {})
  await enqueueing
  // …and the process dies there.
  await api.stop('SIGKILL')
  const [alert] = await app.ctx.database.sql`select id from alerts where type = 'failed_login_threshold'`
  t.ok(alert, 'the alert was stored')

  const workers = await startWorkers(app)
  t.teardown(() => workers.close())
  await until('the alert to be delivered', () => hook.deliveries.includes(`alert-${alert!.id}`), 30_000)
  t.same(hook.deliveries, [`alert-${alert!.id}`], 'delivered, once')
})
