// fast-check arbitraries for the fuzzers: values shaped by a route's JSON schema (as the
// OpenAPI document gives it), bent out of shape often enough to reach every refusal, and the
// hostile classes of http.md's Conventions (NUL, unpaired surrogates, unsafe integers).
import fc from 'fast-check'

type Schema = {
  type?: string | string[]
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean | Schema
  items?: Schema
  anyOf?: Schema[]
  oneOf?: Schema[]
  enum?: unknown[]
  const?: unknown
  minimum?: number
  maximum?: number
  minLength?: number
  maxLength?: number
  format?: string
}

const SPECIAL_UNITS = ['\u0000', '\ud800', '\udbff', '\udc00', '\udfff', '\u202e', '\ufeff', '%', '"', '\\', '/', '..', '<', '\n']

/** Any code point, sometimes a NUL, a half surrogate or a character parsers trip on. */
export const unit = fc.oneof({ weight: 8, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) }, { weight: 2, arbitrary: fc.constantFrom(...SPECIAL_UNITS) })

export const hostileText = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit, maxLength: 40 }) },
  { weight: 4, arbitrary: fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', 'x\udc00', '😀'.slice(0, 1), '%', '%00', '%ED%A0%80', '../../etc/passwd', '__proto__', 'constructor', 'null', '1e20') },
  { weight: 1, arbitrary: fc.constantFrom(201, 501, 5000, 70_000).map((n) => 'a'.repeat(n)) },
)

export const hostileNumber = fc.oneof(
  fc.constantFrom(0, -1, 1.5, -0, 2 ** 31, 2 ** 31 - 1, 2 ** 53, 2 ** 53 + 2, 1e20, -1e20, 1e300, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)

/** A JSON value of any shape, nested a little. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: hostileText },
  { weight: 1, arbitrary: hostileNumber },
)

/** A value for `schema`: mostly of its type and range, sometimes anything at all. */
export function fromSchema(schema: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return anyJson
  const fitting = fitted(schema, depth)
  return fc.oneof({ weight: 8, arbitrary: fitting }, { weight: 1, arbitrary: anyJson })
}

function fitted(schema: Schema, depth: number): fc.Arbitrary<unknown> {
  const alternatives = schema.anyOf ?? schema.oneOf
  if (alternatives && alternatives.length > 0) return fc.oneof(...alternatives.map((s) => fromSchema(s, depth + 1)))
  if (schema.const !== undefined) return fc.constant(schema.const)
  if (schema.enum) return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...schema.enum) }, { weight: 1, arbitrary: hostileText })
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'string':
      return fc.oneof(
        { weight: 6, arbitrary: stringLike(schema) },
        { weight: 1, arbitrary: fc.string({ unit, minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 60, 60) }) },
        { weight: 1, arbitrary: hostileText },
      )
    case 'integer':
    case 'number':
      return fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: Math.max(schema.minimum ?? -1000, -(2 ** 31)), max: Math.min(schema.maximum ?? 1000, 2 ** 31 - 1) }) },
        { weight: 2, arbitrary: hostileNumber },
      )
    case 'boolean':
      return fc.oneof(fc.boolean(), fc.constantFrom('true', 0, 1, null))
    case 'array':
      return fc.array(fromSchema(schema.items, depth + 1), { maxLength: 5 })
    case 'object':
      return objectFrom(schema, depth)
    case 'null':
      return fc.constant(null)
    default:
      return anyJson
  }
}

function stringLike(schema: Schema): fc.Arbitrary<string> {
  switch (schema.format) {
    case 'uuid':
      return fc.oneof(fc.uuid(), fc.uuid().map((u) => u.toUpperCase()), fc.constant('00000000-0000-0000-0000-000000000000'))
    case 'date-time':
      return fc.oneof(
        fc.date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString()),
        fc.constantFrom('2020-02-30T00:00:00Z', '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z', 'yesterday'),
      )
    case 'email':
      return fc.oneof(fc.emailAddress(), fc.constant('a@b'))
    case 'uri':
      return fc.oneof(fc.webUrl(), fc.constantFrom('javascript:alert(1)', 'http://', 'ftp://x.example'))
    default:
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 40, 40) })
  }
}

function objectFrom(schema: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const props = schema.properties ?? {}
  const required = new Set(schema.required ?? [])
  const record: Record<string, fc.Arbitrary<unknown>> = {}
  for (const [name, s] of Object.entries(props)) record[name] = fromSchema(s, depth + 1)
  const known = fc.record(record, { requiredKeys: Object.keys(props).filter((k) => required.has(k)) })
  // Sometimes a required field goes missing, or an unknown (or hostile) field is added.
  const extra = fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), hostileText.map((s) => s.slice(0, 20))), anyJson, { maxKeys: 2 })
  return fc.oneof(
    { weight: 5, arbitrary: known },
    { weight: 1, arbitrary: fc.record(record, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.tuple(known, extra).map(([k, e]) => ({ ...k, ...e })) },
  )
}

const LONE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** encodeURIComponent that survives lone surrogates (sent as an invalid UTF-8 escape). */
export function encode(s: string): string {
  return encodeURIComponent(s.replace(LONE, '\u0001')).replaceAll('%01', '%ED%A0%80')
}

/** A path segment for a parameter: a fitting value, or something a router must survive. */
export function pathSegment(schema: Schema | undefined): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fromSchema(schema).map((v) => encode(typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined'))) },
    { weight: 1, arbitrary: fc.constantFrom('%', '%ZZ', '%ED%A0%80', '%C0%80', '%00', '%2F..%2F', 'a'.repeat(401), '%F0%9F%98', '-1', '1e20', '99999999999999999999', '0x10') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }).map(encode) },
  )
}

/** A query string: fitting values for the declared parameters, repeated keys, raw escapes. */
export function queryString(params: { name: string; schema?: Schema }[]): fc.Arbitrary<string> {
  const pairs = params.map((p) =>
    fc.option(
      fromSchema(p.schema).map((v) => `${encode(p.name)}=${encode(typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))}`),
      { nil: undefined, freq: 2 },
    ),
  )
  const raw = fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('x=%', 'limit=%ZZ', 'a=1&a=2', 'limit=1&limit=2', '%00=%00', '__proto__[x]=1', 'constructor=1') })
  return fc.tuple(fc.tuple(...pairs), raw).map(([ps, extra]) => {
    const parts = ps.filter((p): p is string => p !== undefined)
    if (extra) parts.push(extra)
    return parts.length ? `?${parts.join('&')}` : ''
  })
}

export interface FuzzBody {
  payload?: string | Buffer
  contentType?: string
}

/** A body: JSON fitting the schema mostly; else random, truncated, huge, deeply nested or not JSON. */
export function requestBody(schema: Schema | undefined): fc.Arbitrary<FuzzBody> {
  const json = (v: unknown): FuzzBody => ({ payload: JSON.stringify(v) ?? 'null', contentType: 'application/json' })
  return fc.oneof(
    { weight: 10, arbitrary: fromSchema(schema).map(json) },
    { weight: 2, arbitrary: anyJson.map(json) },
    { weight: 1, arbitrary: fc.constant<FuzzBody>({}) },
    { weight: 1, arbitrary: fromSchema(schema).chain((v) => { const text = JSON.stringify(v) ?? 'null'; return fc.nat({ max: Math.max(0, text.length - 1) }).map((n) => ({ payload: text.slice(0, n), contentType: 'application/json' })) }) },
    { weight: 1, arbitrary: fc.constantFrom(100, 1000, 10_000).map((n) => ({ payload: `${'['.repeat(n)}${']'.repeat(n)}`, contentType: 'application/json' })) },
    { weight: 1, arbitrary: fc.constant(70_000).map((n) => ({ payload: JSON.stringify({ x: 'a'.repeat(n) }), contentType: 'application/json' })) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/xml', 'application/json-patch+json', ''), fc.string({ maxLength: 100 })).map(
        ([contentType, payload]) => ({ payload, contentType }),
      ),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ payload: Buffer.from(bytes), contentType: 'application/json' })) },
  )
}
