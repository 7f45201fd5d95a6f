// TRUST_PROXY: behind a load balancer, the client's address comes from X-Forwarded-For
// of the trusted peers only (rate limits per IP, login history, anomaly flags).
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { build, PASSWORD, type TestApp } from '../helpers/app.js'

t.test('TRUST_PROXY is parsed, and a bad value is named', async (t) => {
  t.equal(loadConfig({}).trustProxy, false, 'off by default')
  t.equal(loadConfig({ TRUST_PROXY: 'true' }).trustProxy, true)
  t.same(loadConfig({ TRUST_PROXY: 'uniquelocal, 10.1.2.3, 192.168.0.0/16, ::1' }).trustProxy, ['uniquelocal', '10.1.2.3', '192.168.0.0/16', '::1'])
  t.throws(() => loadConfig({ TRUST_PROXY: 'the proxy' }), new ConfigError('TRUST_PROXY="the proxy" is not valid: expected true, false, or comma-separated addresses and CIDR ranges (loopback, linklocal and uniquelocal name the private ones)'))
})

async function loginIp(app: TestApp, headers: Record<string, string>): Promise<string> {
  const res = await app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    remoteAddress: '172.18.0.5',
    headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36', ...headers },
    payload: { username: 'ada', password: PASSWORD },
  })
  t.equal(res.statusCode, 200)
  const [row] = await app.ctx.database.sql`select host(ip) as ip from login_attempts where session_id = ${res.json().session.id}`
  return row!.ip as string
}

t.test('behind a trusted balancer the login history has the client’s address; otherwise the peer’s', async (t) => {
  const trusting = await build(t, { TRUST_PROXY: 'uniquelocal' })
  await trusting.user('ada')
  t.equal(await loginIp(trusting, { 'x-forwarded-for': '198.51.100.7' }), '198.51.100.7', 'the balancer (a private address) is trusted')
  t.equal(await loginIp(trusting, { 'x-forwarded-for': '203.0.113.1, 198.51.100.7' }), '198.51.100.7', 'what the client put before the balancer’s entry is not')

  const plain = await build(t)
  await plain.user('ada')
  t.equal(await loginIp(plain, { 'x-forwarded-for': '198.51.100.7' }), '172.18.0.5', 'TRUST_PROXY unset: X-Forwarded-For is ignored')
})
