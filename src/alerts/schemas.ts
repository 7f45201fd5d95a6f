// The Alert as the API, the admin feed (`admin.alert`) and the webhook show it.
import { type Static, Type } from 'typebox'
import { IsoTime, Nullable } from '../infra/schemas.js'

export const ALERT_TYPES = ['failed_login_threshold', 'account_locked', 'multiple_ips', 'new_device', 'fingerprint_mismatch'] as const
export type AlertType = (typeof ALERT_TYPES)[number]

export const AlertTypeSchema = Type.Enum(ALERT_TYPES)

export const Alert = Type.Object({
  id: Type.Integer(),
  type: AlertTypeSchema,
  userId: Nullable(Type.Integer()),
  username: Type.String(),
  message: Type.String(),
  data: Type.Record(Type.String(), Type.Unknown()),
  createdAt: IsoTime,
  acknowledged: Type.Boolean(),
  acknowledgedAt: Nullable(IsoTime),
  acknowledgedBy: Nullable(Type.Integer()),
})
export type Alert = Static<typeof Alert>
