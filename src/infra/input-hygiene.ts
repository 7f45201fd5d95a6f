// What no value from outside may hold (http.md, Conventions): text with a NUL character or
// an unpaired UTF-16 surrogate, and numbers outside the safe integer range. PostgreSQL
// refuses the first two (a NUL ends a C string; a lone surrogate is not UTF-8), and a
// number past 2^53 has lost its digits before any code sees it. Checked once, after the
// schema (so query and path values are already coerced), for every body, query, path
// parameter and header of every route (app.ts's validator compiler) and for every field of
// every WebSocket message (realtime/messages.ts); found, it is `400 VALIDATION_FAILED` or
// `BAD_MESSAGE` with the field named, before anything is written.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

export interface Flaw {
  /** JSON-pointer-like path of the field, e.g. `/filter/user` (empty for the root). */
  path: string
  message: string
}

/** Why a string may not be stored, or null when it is clean. */
export function textFlaw(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain a NUL character (\\u0000)'
  if (LONE_SURROGATE.test(text)) return 'must be valid Unicode text (it holds an unpaired UTF-16 surrogate)'
  return null
}

export function numberFlaw(n: number): string | null {
  if (Number.isFinite(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER) return null
  return `must be a number between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`
}

/** A field name as it can be shown in a message: bad characters written as escapes. */
function shown(key: string): string {
  let out = ''
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    out += c < 0x20 || (c >= 0xd800 && c <= 0xdfff) ? `\\u${c.toString(16).padStart(4, '0')}` : key[i]
  }
  return out
}

/**
 * The first flaw in a parsed value (JSON-like: objects, arrays, strings, numbers), or null.
 * Iterative, so a deeply nested value cannot exhaust the stack.
 */
export function findFlaw(value: unknown): Flaw | null {
  const stack: [unknown, string][] = [[value, '']]
  while (stack.length > 0) {
    const [v, path] = stack.pop()!
    if (typeof v === 'string') {
      const message = textFlaw(v)
      if (message) return { path, message }
    } else if (typeof v === 'number') {
      const message = numberFlaw(v)
      if (message) return { path, message }
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}/${i}`])
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!
        const keyMessage = textFlaw(key)
        if (keyMessage) return { path: `${path}/${shown(key)}`, message: `(a field name) ${keyMessage}` }
        stack.push([(v as Record<string, unknown>)[key], `${path}/${key}`])
      }
    }
  }
  return null
}

/** A flaw as an Ajv error object, so Fastify reports it like any schema failure. */
export function asValidationError(flaw: Flaw) {
  return { instancePath: flaw.path, schemaPath: '#/hygiene', keyword: 'hygiene', params: {}, message: flaw.message }
}

/** Whether `text` parses as JSON. */
export function isJson(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
