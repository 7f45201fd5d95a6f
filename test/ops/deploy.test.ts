// The deployable stack's files (issue 15): compose.yaml's shape (one public port, the
// databases unpublished, health checks, no development secret), the HAProxy config it
// mounts, the preflight that refuses to start without secrets, the entrypoint that reads
// Docker secrets, deploy/new-env.sh, and one Node line for engines, the Dockerfile and CI.
// There is no Docker engine here: what runs in a container is run as a process instead.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Ajv } from 'ajv'
import formatsPlugin from 'ajv-formats'
import semver from 'semver'
import t from 'tap'
import { parse } from 'yaml'

const root = fileURLToPath(new URL('../..', import.meta.url))
/** How compose.yaml passes NAME from .env: `${NAME:-default}`. */
const fromEnv = (name: string, fallback = '') => `\${${name}:-${fallback}}`
const read = (name: string) => readFileSync(join(root, name), 'utf8')

interface Service {
  image?: string
  build?: string
  ports?: string[]
  command?: string[] | string
  environment?: Record<string, string>
  healthcheck?: { test: string[] }
  depends_on?: Record<string, { condition: string }>
  volumes?: string[]
  stop_grace_period?: string
  ulimits?: { nofile?: { soft: number; hard: number } }
}
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> }
const services = compose.services

t.test('compose.yaml: two API nodes and a worker behind HAProxy, PostgreSQL and Redis, one public port', async (t) => {
  t.same(Object.keys(services).sort(), ['api1', 'api2', 'haproxy', 'postgres', 'preflight', 'redis', 'worker'])
  t.equal(services.api1!.environment!.ROLE, 'api')
  t.equal(services.api2!.environment!.ROLE, 'api')
  t.equal(services.worker!.environment!.ROLE, 'worker')
  const published = Object.entries(services).filter(([, s]) => s.ports && s.ports.length > 0)
  t.same(
    published.map(([name]) => name),
    ['haproxy'],
    'only the proxy publishes a port',
  )
  t.same(services.haproxy!.ports, [`${fromEnv('HTTP_PORT', '8080')}:8080`], 'one port')
  t.match(services.haproxy!.image, /^haproxy:\d/, 'HAProxy from its official image')
  t.ok(services.haproxy!.volumes!.includes('./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro'), 'its config is deploy/haproxy.cfg')
  for (const name of ['postgres', 'redis']) {
    t.notOk(services[name]!.ports, `${name} is not published on the host`)
    t.ok(services[name]!.healthcheck, `${name} has a health check`)
  }
  for (const name of ['api1', 'api2', 'worker']) {
    const s = services[name]!
    t.equal(s.build, '.', `${name} is built from the Dockerfile`)
    t.match(s.depends_on, { preflight: { condition: 'service_completed_successfully' }, postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } })
    t.equal(s.environment!.NODE_ENV, 'production')
    t.equal(s.environment!.SESSION_SECRET, fromEnv('SESSION_SECRET'), 'no default secret')
    t.equal(s.environment!.COOKIE_SECURE, fromEnv('COOKIE_SECURE'), 'COOKIE_SECURE unset by default: Secure in production')
    t.equal(s.environment!.ADMIN_PASSWORD, fromEnv('ADMIN_PASSWORD'), 'the first admin’s password: given, or generated and printed once')
    t.match(s.stop_grace_period, /^(1[1-9]|[2-9]\d)s$/, 'a stop grace period above the 10 s a process takes to drain')
    t.ok((s.ulimits?.nofile?.soft ?? 0) >= 51_000, 'open files for 50,000 tabs and the connections besides (P9), whatever the host’s default')
  }
  t.match(services.haproxy!.depends_on, { api1: { condition: 'service_healthy' }, api2: { condition: 'service_healthy' } })
  for (const name of ['postgres', 'redis']) t.match(services[name]!.depends_on, { preflight: { condition: 'service_completed_successfully' } })
})

// The Compose Specification's JSON schema (compose-spec/compose-spec, schema/compose-spec.json
// at 170098ba07d9, Apache-2.0), which `docker compose config` checks files against: there is
// no Compose v2 here (Debian's docker-compose 1.29 was used by hand as well).
t.test('compose.yaml and the override files are valid against the Compose Specification', async (t) => {
  const schema = JSON.parse(readFileSync(join(root, 'test/fixtures/compose-spec.json'), 'utf8')) as Record<string, unknown>
  delete schema.$schema
  const ajv = new Ajv({ allErrors: true, strict: false })
  const addFormats = ((formatsPlugin as unknown as { default?: unknown }).default ?? formatsPlugin) as (ajv: Ajv) => Ajv
  addFormats(ajv)
  const validate = ajv.compile(schema)
  for (const file of ['compose.yaml', 'compose.dev.yaml', 'deploy/compose.secrets.yaml', 'deploy/compose.monitoring.yaml']) {
    t.ok(validate(parse(read(file), { merge: true })), `${file}: ${JSON.stringify(validate.errors)}`)
  }
  t.notOk(validate({ services: { api1: { image: 'x', bogus: 1 } } }), 'and the schema does refuse what Compose refuses')
})

t.test('the image is healthy when ready: its HEALTHCHECK asks /readyz', async (t) => {
  const dockerfile = read('Dockerfile')
  t.match(dockerfile, /HEALTHCHECK[^\n]*\\\n\s+CMD .*\/readyz/)
  t.notMatch(dockerfile, /\/healthz'/)
  t.match(dockerfile, /ENTRYPOINT \["tessera-entrypoint"\]/)
})

t.test('deploy/haproxy.cfg: every API node, /readyz health checks, WebSocket timeouts, no stickiness, /metrics kept inside', async (t) => {
  const cfg = read('deploy/haproxy.cfg')
  const servers = [...cfg.matchAll(/^\s+server (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`)
  const nodes = Object.entries(services).filter(([, s]) => s.environment?.ROLE === 'api')
  t.same(
    [...new Set(servers)].sort(),
    nodes.map(([name, s]) => `${name} ${name}:${s.environment!.PORT}`).sort(),
    'a server line for each API service, on its port',
  )
  t.match(cfg, /backend api\n[\s\S]*?http-check send meth GET uri \/readyz/, 'the load balancer checks /readyz')
  t.match(cfg, /^\s+timeout tunnel \d+[hm]$/m, 'a tunnel timeout for upgraded WebSockets')
  t.notMatch(cfg, /^\s+(cookie|stick|balance source|hash-type)/m, 'no sticky sessions')
  t.match(cfg, /http-request deny deny_status 404 if \{ path \/metrics \}/)
  t.match(cfg, /bind :8080$/m, 'listens on the port compose publishes')
  t.match(cfg, /retry-on conn-failure/, 'a stopping node’s refused connections go to another node')
})

const haproxy = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => existsSync(p))
t.test('deploy/haproxy.cfg is valid for HAProxy', { skip: haproxy ? false : 'haproxy is not installed (apt-get install haproxy; CI does)' }, async (t) => {
  const r = spawnSync(haproxy!, ['-c', '-f', join(root, 'deploy/haproxy.cfg')], { encoding: 'utf8' })
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`)
  t.match(r.stdout, /Configuration file is valid/)
})

t.test('preflight refuses to start the stack without its secrets or with a bad value, with one line', async (t) => {
  const script = (services.preflight!.command as string[])[3]!.replace('/app/dist/src/config.js', pathToFileURL(join(root, 'src/config.ts')).href)
  t.match(services.preflight!.environment, { NODE_ENV: 'production', SESSION_SECRET: fromEnv('SESSION_SECRET'), POSTGRES_PASSWORD: fromEnv('POSTGRES_PASSWORD') })
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH, NODE_ENV: 'production', ...env } })
    return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() }
  }
  const secret = 's'.repeat(48)
  t.match(run({}), { code: 1, out: /^tessera: POSTGRES_PASSWORD is not set: .*deploy\/new-env\.sh/ })
  t.match(run({ POSTGRES_PASSWORD: 'pw' }), { code: 1, out: /^tessera: SESSION_SECRET is not set: / })
  t.match(run({ POSTGRES_PASSWORD: 'pw', SESSION_SECRET: 'short' }), { code: 1, out: /^tessera: SESSION_SECRET=<hidden> is not valid/ })
  t.match(run({ POSTGRES_PASSWORD: 'pw', SESSION_SECRET: secret, COOKIE_SECURE: 'maybe' }), { code: 1, out: /^tessera: COOKIE_SECURE="maybe" is not valid/ })
  t.same(run({ POSTGRES_PASSWORD: 'pw', SESSION_SECRET: secret }), { code: 0, out: 'tessera: configuration checked' })
  t.same(run({ PGPASSWORD: 'pw', SESSION_SECRET: secret }), { code: 0, out: 'tessera: configuration checked' }, 'PostgreSQL’s password as a Docker secret (PGPASSWORD) counts')
})

t.test('the entrypoint turns NAME_FILE into NAME (Docker secrets)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'session_secret'), 'from-a-file-0123456789-0123456789\n')
  const run = (env: Record<string, string>) => {
    const r = spawnSync('sh', [join(root, 'deploy/docker-entrypoint.sh'), 'env'], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } })
    return { code: r.status, out: r.stdout, err: r.stderr.trim() }
  }
  const ok = run({ SESSION_SECRET_FILE: join(dir, 'session_secret'), SESSION_SECRET: '' })
  t.equal(ok.code, 0)
  t.match(ok.out, /^SESSION_SECRET=from-a-file-0123456789-0123456789$/m, 'the file’s content, without its newline')
  t.notMatch(ok.out, /SESSION_SECRET_FILE=/, 'and NAME_FILE is gone')
  t.match(run({ SESSION_SECRET_FILE: join(dir, 'session_secret'), SESSION_SECRET: 'x' }), { code: 1, err: 'tessera: both SESSION_SECRET and SESSION_SECRET_FILE are set: set only one' })
  t.match(run({ ADMIN_PASSWORD_FILE: join(dir, 'missing') }), { code: 1, err: /^tessera: ADMIN_PASSWORD_FILE=.*missing cannot be read/ })
  t.ok(statSync(join(root, 'deploy/docker-entrypoint.sh')).mode & 0o111, 'it is executable (COPY keeps the mode)')
})

t.test('deploy/new-env.sh writes .env once, with new secrets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-env-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'deploy'))
  copyFileSync(join(root, 'deploy/new-env.sh'), join(dir, 'deploy/new-env.sh'))
  copyFileSync(join(root, '.env.example'), join(dir, '.env.example'))
  chmodSync(join(dir, 'deploy/new-env.sh'), 0o755)
  const run = () => spawnSync('sh', [join(dir, 'deploy/new-env.sh')], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  t.equal(run().status, 0)
  const env = readFileSync(join(dir, '.env'), 'utf8')
  t.match(env, /^SESSION_SECRET=[A-Za-z0-9]{48}$/m)
  t.match(env, /^POSTGRES_PASSWORD=[A-Za-z0-9]{32}$/m)
  t.equal(env.replace(/^(SESSION_SECRET|POSTGRES_PASSWORD)=.*$/gm, '$1='), read('.env.example'), 'otherwise .env.example as it is')
  t.equal(statSync(join(dir, '.env')).mode & 0o077, 0, 'readable by its owner only')
  const again = run()
  t.equal(again.status, 0, 'a second run succeeds (the README runs it before every start)')
  t.match(again.stderr, /\.env exists already: kept/, 'and never overwrites .env')
  t.equal(readFileSync(join(dir, '.env'), 'utf8'), env)
})

t.test('one Node line: engines, the Dockerfile, CI and every dependency agree', async (t) => {
  const pkg = JSON.parse(read('package.json')) as { engines: { node: string } }
  const range = pkg.engines.node
  const image = /^ARG NODE_VERSION=(\S+)$/m.exec(read('Dockerfile'))?.[1]
  t.ok(image, 'the Dockerfile names its Node version once')
  t.ok(semver.satisfies(`${image}.0`.split('.').slice(0, 3).join('.'), range), `the image's Node ${image} is in engines (${range})`)
  t.ok(semver.satisfies(process.version, range), `this Node (${process.version}, the one CI runs) is in engines (${range})`)
  t.match(read('.ci/run'), /engines/, 'CI checks the Node it runs on against engines')
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version?: string; engines?: { node?: string } }> }
  const lowest = semver.minVersion(range)!.version
  const refusing = Object.entries(lock.packages)
    .filter(([, p]) => p.engines?.node && !(semver.satisfies(lowest, p.engines.node) && semver.satisfies(process.version, p.engines.node)))
    .map(([name, p]) => `${name}@${p.version} (node ${p.engines!.node})`)
  t.same(refusing, [], 'no installed package declares a Node outside the line')
})
