import { Type, type Static } from 'typebox'

const Seconds = (min: number, max: number) => Type.Integer({ minimum: min, maximum: max })
const Limit = Type.Integer({ minimum: 1, maximum: 10_000 })
// A key that matches no pattern is refused, not stored (a Record alone lets it through).
const closed = { additionalProperties: false } as const

export const ConcurrentLimits = Type.Object(
  {
    byRole: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$' }), Limit, closed),
    byUser: Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,9}$' }), Limit, closed),
    default: Limit,
  },
  { additionalProperties: false },
)

export const FailedLogin = Type.Object(
  {
    threshold: Type.Integer({ minimum: 1, maximum: 1000 }),
    windowSeconds: Seconds(1, 30 * 86_400),
    lockoutEnabled: Type.Boolean(),
    lockoutSeconds: Seconds(1, 30 * 86_400),
    byUser: Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,9}$' }), Type.Integer({ minimum: 1, maximum: 1000 }), closed),
  },
  { additionalProperties: false },
)

export const Anomaly = Type.Object(
  { distinctIps: Type.Integer({ minimum: 2, maximum: 1000 }), windowHours: Type.Integer({ minimum: 1, maximum: 8760 }) },
  { additionalProperties: false },
)

const fields = {
  idleAfterSeconds: Seconds(1, 30 * 86_400),
  idleTimeoutSeconds: Seconds(2, 30 * 86_400),
  lifetimeSeconds: Seconds(60, 365 * 86_400),
  idleWarningSeconds: Seconds(0, 86_400),
  concurrentLimits: ConcurrentLimits,
  limitPolicy: Type.Union([Type.Literal('terminate_oldest'), Type.Literal('block_new')]),
  failedLogin: FailedLogin,
  anomaly: Anomaly,
}

export const SettingsValues = Type.Object(fields, { additionalProperties: false })
export type SettingsValues = Static<typeof SettingsValues>

export const Settings = Type.Object({
  ...fields,
  version: Type.Integer(),
  updatedAt: Type.String({ format: 'date-time' }),
  updatedBy: Type.Union([Type.Integer(), Type.Null()]),
})
export type Settings = Static<typeof Settings>

/** `PUT /admin/sessions/config`: any subset; nested objects are replaced as a whole, except the partial-friendly ones below. */
export const SettingsPatch = Type.Object(
  {
    idleAfterSeconds: Type.Optional(fields.idleAfterSeconds),
    idleTimeoutSeconds: Type.Optional(fields.idleTimeoutSeconds),
    lifetimeSeconds: Type.Optional(fields.lifetimeSeconds),
    idleWarningSeconds: Type.Optional(fields.idleWarningSeconds),
    // Partial drops additionalProperties: false; without it unknown nested fields were saved.
    concurrentLimits: Type.Optional(Type.Partial(ConcurrentLimits, closed)),
    limitPolicy: Type.Optional(fields.limitPolicy),
    failedLogin: Type.Optional(Type.Partial(FailedLogin, closed)),
    anomaly: Type.Optional(Type.Partial(Anomaly, closed)),
    expectedVersion: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
)
export type SettingsPatch = Static<typeof SettingsPatch>
