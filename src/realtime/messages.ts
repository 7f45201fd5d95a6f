// Schemas of the client → server messages, compiled once. A message that is not JSON, has
// an unknown type or fails its schema is a BAD_MESSAGE.
import { Ajv } from 'ajv'
import { type Static, Type } from 'typebox'
import { SORT_COLUMNS } from './protocol.js'
import { ROLES } from '../settings/roles.js'
import { describeFailure } from '../infra/errors.js'
import { findFlaw } from '../infra/input-hygiene.js'

const View = Type.String({ maxLength: 200 })
const EpochMs = Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000 })

const AdminFilter = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('idle')])),
    user: Type.Optional(Type.String({ maxLength: 200 })),
    role: Type.Optional(Type.Union(ROLES.map((r) => Type.Literal(r)))),
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    q: Type.Optional(Type.String({ maxLength: 200 })),
    sort: Type.Optional(Type.Union(SORT_COLUMNS.map((c) => Type.Literal(c)))),
    order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  },
  { additionalProperties: false },
)

const strict = { additionalProperties: false } as const

export const ClientMessage = {
  hello: Type.Object(
    { type: Type.Literal('hello'), tabId: Type.String({ minLength: 1, maxLength: 64 }), view: View, lastSeq: Type.Optional(Type.Integer({ minimum: 0 })) },
    strict,
  ),
  heartbeat: Type.Object({ type: Type.Literal('heartbeat'), view: Type.Optional(View), lastInputAt: Type.Optional(EpochMs) }, strict),
  activity: Type.Object({ type: Type.Literal('activity'), at: EpochMs }, strict),
  view: Type.Object({ type: Type.Literal('view'), view: View }, strict),
  'admin.subscribe': Type.Object({ type: Type.Literal('admin.subscribe'), filter: Type.Optional(AdminFilter) }, strict),
  'admin.unsubscribe': Type.Object({ type: Type.Literal('admin.unsubscribe') }, strict),
  ping: Type.Object({ type: Type.Literal('ping'), id: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number()])) }, strict),
}

export type ClientMessage = { [K in keyof typeof ClientMessage]: Static<(typeof ClientMessage)[K]> }[keyof typeof ClientMessage]
export type Hello = Static<typeof ClientMessage.hello>
export type AdminFilter = Static<typeof AdminFilter>

const ajv = new Ajv({ allErrors: false, strict: false })
// Each validator narrows what passes it to a ClientMessage (the union of these very schemas).
const validators = new Map(Object.entries(ClientMessage).map(([type, schema]) => [type, ajv.compile<ClientMessage>(schema)]))

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; reason: string }

export function parseClientMessage(raw: string): Parsed {
  let data: unknown
  try {
    data = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'not valid JSON' }
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { ok: false, reason: 'a message must be a JSON object' }
  const type = (data as { type?: unknown }).type
  const validate = typeof type === 'string' ? validators.get(type) : undefined
  if (!validate) return { ok: false, reason: `unknown message type ${JSON.stringify(type)?.slice(0, 70) ?? 'undefined'}` }
  if (!validate(data)) {
    const e = validate.errors?.[0]
    const field = (e?.params as { additionalProperty?: string; missingProperty?: string } | undefined)
    const where = field?.additionalProperty ?? field?.missingProperty ?? e?.instancePath.replace(/^\//, '') ?? ''
    return { ok: false, reason: `${type}: ${where ? `${where} ` : ''}${validate.errors ? describeFailure(validate.errors as never) : 'is invalid'}` }
  }
  const flaw = findFlaw(data)
  if (flaw) return { ok: false, reason: `${type}: ${flaw.path.replace(/^\//, '').replaceAll('/', '.') || 'message'} ${flaw.message}` }
  return { ok: true, message: data }
}
