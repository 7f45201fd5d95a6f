import { Type } from 'typebox'
import { IsoTime, Nullable, Uuid } from '../infra/schemas.js'

export const Device = Type.Object({ browser: Nullable(Type.String()), os: Nullable(Type.String()), type: Type.String() })

export const SessionView = Type.Object({
  id: Uuid,
  userId: Type.Integer(),
  username: Type.String(),
  role: Type.String(),
  loginAt: IsoTime,
  lastActivity: IsoTime,
  currentView: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  device: Device,
  status: Type.Union([Type.Literal('active'), Type.Literal('idle')]),
  tabs: Type.Integer(),
  platform: Nullable(Type.Object({ id: Type.Integer(), name: Type.String() })),
})

export const UserSummary = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  email: Nullable(Type.String()),
  role: Type.String(),
})

export const PlatformSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  type: Type.Union([Type.Literal('pixelfed'), Type.Literal('mastodon'), Type.Literal('other')]),
  instanceUrl: Type.String(),
  isDefault: Type.Boolean(),
})

export const SessionState = Type.Object({
  user: UserSummary,
  platform: Nullable(PlatformSchema),
  session: Type.Object({
    id: Uuid,
    createdAt: IsoTime,
    lastActivity: IsoTime,
    expiresAt: IsoTime,
    idleExpiresAt: IsoTime,
    status: Type.Union([Type.Literal('active'), Type.Literal('idle')]),
    tabs: Type.Integer(),
  }),
  version: Type.Integer(),
  seq: Type.Integer(),
  timestamp: IsoTime,
})
