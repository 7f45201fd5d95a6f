// .env.example and the settings compose.yaml passes to Tessera are generated from
// src/config.ts, like the README's table: this fails when someone changes one without the
// others (fix: `npm run config:doc`).
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'
import {
  between,
  envNames,
  renderComposeEnvironment,
  renderEnvExample,
  STACK_DEFAULTS,
  STACK_FIXED,
  STACK_VARIABLES,
  withBlock,
} from '../../scripts/config-env.js'
import { configVariables } from '../../src/config.js'

/** How compose.yaml passes NAME from .env: `${NAME:-default}`. */
const fromEnv = (name: string, fallback = '') => `\${${name}:-${fallback}}`
const read = (name: string) => readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8')
const names = configVariables.map((v) => v.env)

t.test('.env.example is what src/config.ts gives, and lists every setting in order', async (t) => {
  const example = read('.env.example')
  t.equal(example, renderEnvExample(), '.env.example is out of date: run npm run config:doc')
  t.same(envNames(example), [...STACK_VARIABLES.map((v) => v.env), ...names], 'the stack’s own variables, then every setting of src/config.ts')
  for (const name of Object.keys(STACK_FIXED)) t.match(example, new RegExp(`^# ${name}=$`, 'm'), `${name} is there, commented out: compose.yaml sets it`)
  t.match(example, /^SESSION_SECRET=$/m, 'no secret in the example')
})

t.test('compose.yaml passes every setting it does not fix, from .env or the environment', async (t) => {
  const compose = read('compose.yaml')
  t.equal(between(compose), renderComposeEnvironment(), "compose.yaml's settings are out of date: run npm run config:doc")
  const environment = (parse(compose, { merge: true }) as { 'x-tessera': { environment: Record<string, string> } })['x-tessera'].environment
  for (const name of names) {
    if (name === 'ROLE' || name === 'PORT' || name === 'WORKER_PORT') continue // per service
    t.ok(name in environment, `${name} reaches the containers`)
    if (STACK_FIXED[name] === undefined) t.equal(environment[name], `\${${name}:-${STACK_DEFAULTS[name] ?? ''}}`, `${name} from .env, empty by default`)
  }
  t.equal(environment.NODE_ENV, 'production')
  t.equal(environment.SESSION_SECRET, fromEnv('SESSION_SECRET'), 'no SESSION_SECRET default in compose.yaml')
})

t.test('a new or removed setting changes both files', async (t) => {
  const variables = configVariables.map((v) => ({ env: v.env, default: v.default, meaning: v.meaning }))
  const added = [...variables, { env: 'NEW_SETTING', default: '1', meaning: 'new' }]
  t.not(renderEnvExample(added), renderEnvExample())
  t.match(renderEnvExample(added), /# new \(default: 1\)\nNEW_SETTING=\n$/)
  t.match(renderComposeEnvironment(added), /\n {4}NEW_SETTING: \$\{NEW_SETTING:-\}$/)
  const removed = variables.filter((v) => v.env !== 'LOG_LEVEL')
  t.notMatch(renderEnvExample(removed), /LOG_LEVEL/)
  t.notMatch(renderComposeEnvironment(removed), /LOG_LEVEL/)
  const doc = 'a:\n  # config:start\n  OLD: x\n  # config:end\nb: 1\n'
  t.equal(withBlock(doc, '  NEW: y'), 'a:\n  # config:start\n  NEW: y\n  # config:end\nb: 1\n')
  t.equal(between(withBlock(doc, '  NEW: y')), '  NEW: y')
  t.throws(() => withBlock('no markers', ''), /needs the markers/)
})
