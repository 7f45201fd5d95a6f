// .env.example and compose.yaml's list of settings, rendered from src/config.ts's variable
// list like the README's table (./config-table.ts), so that neither can drift:
// `npm run config:doc` writes them, `npm run config:doc -- --check` and
// test/config/env-example.test.ts report differences.
import { configVariables } from '../src/config.js'

interface Documented {
  env: string
  default: string | undefined
  meaning: string
}

/** What compose.yaml sets itself for every Tessera container, and why; these are not passed from .env. */
export const STACK_FIXED: Record<string, string> = {
  ROLE: 'per service: api1 and api2 run `api`, worker runs `worker`',
  NODE_ENV: '`production`',
  HOST: '`0.0.0.0`, inside the container',
  PORT: '`3000` inside the container; the public port is HTTP_PORT',
  WORKER_PORT: '`3001` inside the container',
  DATABASE_URL: 'the stack’s PostgreSQL, with POSTGRES_PASSWORD',
  REDIS_URL: 'the stack’s Redis',
}

/** Where the stack's default differs from Tessera's own. */
export const STACK_DEFAULTS: Record<string, string> = {
  PUBLIC_URL: 'http://localhost:8080',
  TRUST_PROXY: 'uniquelocal',
}

/** Variables of the stack itself (compose.yaml), not of Tessera. */
export const STACK_VARIABLES: Documented[] = [
  { env: 'POSTGRES_PASSWORD', default: undefined, meaning: 'required: the password of the stack’s PostgreSQL (letters and digits: it goes into DATABASE_URL)' },
  { env: 'HTTP_PORT', default: '8080', meaning: 'the one port published on the host (HAProxy); set PUBLIC_URL to match' },
]

export const ENV_START = '# config:start'
export const ENV_END = '# config:end'

const comment = (text: string) => `# ${text.replaceAll('`', '').replaceAll('\n', ' ')}`

/** .env.example: every variable, with its meaning and default; an empty value means the default. */
export function renderEnvExample(variables: readonly Documented[] = configVariables): string {
  const lines = [
    '# Every setting, for `docker compose up` (compose.yaml reads .env) and for `npm start`',
    '# (which reads .env in development). `sh deploy/new-env.sh` copies this file to .env with',
    '# new secrets. An empty value means the default. Generated from src/config.ts by',
    '# `npm run config:doc`: edit src/config.ts, not this file. README.md "Configuration" and',
    '# docs/operations.md say more.',
    '',
    '# ---- The Docker stack (compose.yaml) ----',
    '',
  ]
  for (const v of STACK_VARIABLES) {
    lines.push(comment(`${v.meaning}${v.default === undefined ? '' : ` (default: ${v.default})`}`), `${v.env}=`, '')
  }
  lines.push('# ---- Tessera ----', '')
  for (const v of variables) {
    const stackDefault = STACK_DEFAULTS[v.env]
    const deflt = stackDefault !== undefined ? `compose.yaml’s default: ${stackDefault}; Tessera’s: ${v.default ?? 'unset'}` : `default: ${v.default ?? 'unset'}`
    lines.push(comment(`${v.meaning} (${deflt})`))
    const fixed = STACK_FIXED[v.env]
    if (fixed !== undefined) lines.push(comment(`compose.yaml sets it: ${fixed}`), `# ${v.env}=`, '')
    else lines.push(`${v.env}=`, '')
  }
  return `${lines.join('\n').trimEnd()}\n`
}

/**
 * compose.yaml's lines between the markers: each setting the stack does not fix, passed
 * from .env or the environment (empty, the usual case, means the default).
 */
export function renderComposeEnvironment(variables: readonly Documented[] = configVariables, indent = '    '): string {
  return variables
    .filter((v) => STACK_FIXED[v.env] === undefined)
    .map((v) => `${indent}${v.env}: \${${v.env}:-${STACK_DEFAULTS[v.env] ?? ''}}`)
    .join('\n')
}

/** The text between `# config:start` and `# config:end` (exclusive, without their lines), or null. */
export function between(text: string): string | null {
  const start = text.indexOf(ENV_START)
  const end = text.indexOf(ENV_END)
  if (start < 0 || end < start) return null
  return text.slice(text.indexOf('\n', start) + 1, text.lastIndexOf('\n', end))
}

/** `text` with `block` between the markers (whose lines, and indentation, stay). */
export function withBlock(text: string, block: string): string {
  const start = text.indexOf(ENV_START)
  const end = text.indexOf(ENV_END)
  if (start < 0 || end < start) throw new Error(`needs the markers ${ENV_START} and ${ENV_END}, in that order`)
  return `${text.slice(0, text.indexOf('\n', start) + 1)}${block}${text.slice(text.lastIndexOf('\n', end))}`
}

/** Names, in order, of `NAME=` or `# NAME=` lines of a .env file. */
export function envNames(text: string): string[] {
  return [...text.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!)
}
