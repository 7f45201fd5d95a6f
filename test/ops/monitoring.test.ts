// deploy/'s monitoring files use the metrics Tessera really exports: every tessera_*
// (and process_*) name in the Grafana dashboard and the Prometheus alerts is one that
// src/infra/metrics.ts registers, with a suffix only where it is a histogram.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { createMetrics } from '../../src/infra/metrics.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const read = (name: string) => readFileSync(join(root, name), 'utf8')

interface Panel {
  type: string
  title: string
  targets?: { expr: string }[]
}
const dashboard = JSON.parse(read('deploy/grafana/tessera.json')) as { uid: string; panels: Panel[] }
const alerts = parse(read('deploy/prometheus-alerts.yml')) as { groups: { rules: { alert: string; expr: string }[] }[] }

const registered = new Map((await createMetrics().registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]))

/** The Tessera and process metric names an expression uses, each checked against the registry. */
function unknownNames(expr: string): string[] {
  const unknown: string[] = []
  for (const [name] of expr.matchAll(/\b(?:tessera|process)_[a-z_]+\b/g)) {
    const base = name.replace(/_(bucket|count|sum)$/, '')
    const type = registered.get(name) ?? (base !== name ? registered.get(base) : undefined)
    if (type === undefined || (base !== name && !registered.has(name) && type !== 'histogram')) unknown.push(name)
  }
  return unknown
}

t.test('the Grafana dashboard: every metric it asks for exists', async (t) => {
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((target) => target.expr))
  t.ok(exprs.length > 15, `${exprs.length} queries`)
  for (const expr of exprs) t.same(unknownNames(expr), [], expr)
})

t.test('the dashboard shows sockets, sessions by status, switch and handshake latency, job queues and errors', async (t) => {
  const uses = (metric: string) => dashboard.panels.filter((p) => p.targets?.some((target) => target.expr.includes(metric))).map((p) => p.title)
  t.ok(uses('tessera_ws_sockets').length > 0, 'sockets')
  t.ok(dashboard.panels.some((p) => p.targets?.some((target) => /max by \(status\) \(tessera_sessions\)/.test(target.expr))), 'sessions by status')
  t.ok(dashboard.panels.some((p) => p.targets?.some((target) => target.expr.includes('route="/api/switch_platform/:platformId"'))), 'switch latency')
  t.ok(uses('tessera_ws_handshake_seconds_bucket').length > 0, 'handshake latency')
  t.ok(uses('tessera_jobs_total').length > 0 && uses('tessera_job_duration_seconds_bucket').length > 0, 'job queues')
  t.ok(uses('status="5xx"').length > 0 && uses('tessera_ws_closes_total').length > 0, 'errors')
  const ids = dashboard.panels.map((p) => JSON.stringify(p).match(/"id":(\d+)/)?.[1])
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique')
})

t.test('the Prometheus alerts: every metric they use exists', async (t) => {
  const rules = alerts.groups.flatMap((g) => g.rules)
  t.ok(rules.length >= 10, `${rules.length} alerts`)
  for (const rule of rules) t.same(unknownNames(rule.expr), [], rule.alert)
})

t.test('the switch route the dashboard asks for is the route the API labels', async (t) => {
  t.match(read('src/platforms/routes.ts'), "'/api/switch_platform/:platformId'")
})

const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))
t.test('promtool accepts the scrape config and the alerts', { skip: promtool ? false : 'promtool is not installed (apt-get install prometheus)' }, async (t) => {
  for (const args of [['check', 'config', 'prometheus.yml'], ['check', 'rules', 'prometheus-alerts.yml']]) {
    const r = spawnSync(promtool!, args, { cwd: join(root, 'deploy'), encoding: 'utf8' })
    t.equal(r.status, 0, `promtool ${args.join(' ')}: ${r.stdout}${r.stderr}`)
  }
})
