// The layers of src/ (docs/architecture.md, "Layers"), checked by `npm run lint`.
// A feature imports only from its own layer's allowed neighbours and from layers below it;
// never another feature's store; no cycle between modules.
const layers = [
  // 0: connections, config, errors, the event bus; the wire vocabulary (imported by client/ too)
  ['src/infra/', 'src/config\\.ts$', 'src/realtime/protocol\\.ts$', 'db/'],
  // 1: the records every feature writes to: runtime settings and the audit trail
  ['src/settings/', 'src/audit/'],
  // 2: what a session is and does
  ['src/sessions/'],
  // 3: features on a session
  ['src/auth/', 'src/platforms/', 'src/presence/', 'src/locks/'],
  // 4: features over all of the above
  ['src/realtime/', 'src/admin/', 'src/alerts/', 'src/analytics/', 'src/jobs/', 'src/uploads/', 'src/ops/', 'src/web/'],
  // 5: entry points: wiring and processes
  ['src/app\\.ts$', 'src/main\\.ts$', 'src/resources\\.ts$', 'src/cli/', 'src/demo/'],
]
const names = ['infra', 'records', 'sessions', 'features', 'surfaces', 'entry']
const anyOf = (paths) => `^(${paths.join('|')})`

/** Imports between two features of the same layer that are allowed (no cycle: one direction only). */
const sideways = [
  ['src/settings/', 'src/audit/'],
  ['src/auth/', 'src/platforms/'],
  ['src/admin/', 'src/realtime/'],
  ['src/jobs/', 'src/alerts/'],
  ['src/jobs/', 'src/uploads/'],
  ['src/alerts/', 'src/admin/'],
  ['src/cli/', 'src/admin/'],
]

const upward = layers.slice(0, -1).map((paths, i) => ({
  name: `layer-${names[i]}-imports-upward`,
  severity: 'error',
  comment: `The ${names[i]} layer imports only from itself and the layers below it (docs/architecture.md).`,
  from: { path: anyOf(paths), pathNot: 'src/realtime/protocol\\.ts$' },
  to: { path: anyOf(layers.slice(i + 1).flat()), pathNot: 'src/realtime/protocol\\.ts$' },
}))

const features = layers.slice(1).flat().filter((p) => p.endsWith('/'))
const sideRules = features.map((from) => {
  const layer = layers.find((l) => l.includes(from))
  const allowed = sideways.filter(([a]) => a === from).map(([, b]) => b)
  const others = layer.filter((p) => p !== from && p.endsWith('/') && !allowed.includes(p))
  return others.length === 0
    ? null
    : {
        name: `no-sideways-from-${from.slice(4, -1)}`,
        severity: 'error',
        comment: 'Features of one layer do not import each other, except the pairs listed in .dependency-cruiser.cjs.',
        from: { path: `^${from}` },
        to: { path: anyOf(others), pathNot: 'src/realtime/protocol\\.ts$' },
      }
}).filter(Boolean)

module.exports = {
  forbidden: [
    ...upward,
    ...sideRules,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No module cycle.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-tables-in-admin-jobs-cli',
      severity: 'error',
      comment: 'admin, the jobs and the CLI own no tables: they call the services of the features that do (docs/architecture.md).',
      from: { path: '^src/(admin|jobs|cli)/' },
      to: { path: '^(db/schema\\.ts$|node_modules/(drizzle-orm|postgres)/)' },
    },
    {
      name: 'no-foreign-store',
      severity: 'error',
      comment: "A feature's store is its own: other features call its service.",
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/store\\.ts$', pathNot: '^src/$1/' },
    },
  ],
  options: {
    // TypeScript 7 has no compiler API for dependency-cruiser to parse with; swc does.
    parser: 'swc',
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist' },
  },
}
