// PostgreSQL schema: the durable state (architecture.md, "Where state lives").
// Migrations in db/migrations are generated from this file with `npm run db:generate`.
import { sql } from 'drizzle-orm'
import {
  bigserial,
  boolean,
  char,
  check,
  index,
  inet,
  integer,
  jsonb,
  pgTable,
  serial,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core'

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

export const users = pgTable(
  'users',
  {
    id: serial('id').primaryKey(),
    username: text('username').notNull(),
    email: text('email'),
    passwordHash: text('password_hash').notNull(),
    role: text('role').notNull().default('user'),
    disabled: boolean('disabled').notNull().default(false),
    lockedUntil: ts('locked_until'),
    /** The identity provider's `iss#sub` this account signs in as (POST /api/auth/oidc), or null. */
    oidcSubject: text('oidc_subject').unique(),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [uniqueIndex('users_username_lower_key').on(sql`lower(${t.username})`), index('users_role_idx').on(t.role)],
)

export const platforms = pgTable(
  'platforms',
  {
    id: serial('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    type: text('type').$type<'pixelfed' | 'mastodon' | 'other'>().notNull(),
    instanceUrl: text('instance_url').notNull(),
    isDefault: boolean('is_default').notNull().default(false),
    // A connection can be switched off (revoked credentials, say) without deleting it.
    active: boolean('active').notNull().default(true),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [
    index('platforms_user_idx').on(t.userId),
    uniqueIndex('platforms_one_default_per_user').on(t.userId).where(sql`${t.isDefault}`),
  ],
)

export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id').primaryKey(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: char('token_hash', { length: 64 }).notNull(),
    status: text('status').$type<'active' | 'ended'>().notNull().default('active'), // idle is presence, not status
    activePlatformId: integer('active_platform_id').references(() => platforms.id, { onDelete: 'set null' }),
    version: integer('version').notNull().default(1),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastActivity: ts('last_activity').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
    endedAt: ts('ended_at'),
    endReason: text('end_reason'),
    endedBy: integer('ended_by'),
    endNote: text('end_note'),
    /** The tab that logged out (session.logged_out byTabId), so that a repeated announcement says the same. */
    endTabId: text('end_tab_id'),
    /** When the session-ended job finished every follow-up of the ending; null while some may be missing. */
    finalizedAt: ts('finalized_at'),
    ip: inet('ip'),
    userAgent: text('user_agent'),
    device: jsonb('device').$type<{ browser: string | null; os: string | null; type: string }>(),
    fingerprint: char('fingerprint', { length: 64 }),
    flags: jsonb('flags').$type<string[]>().notNull().default([]),
  },
  (t) => [
    uniqueIndex('sessions_token_hash_key').on(t.tokenHash),
    index('sessions_user_active_idx').on(t.userId, t.lastActivity).where(sql`${t.status} = 'active'`),
    // No index has active_platform_id: a switch, which changes only it and the version, is then
    // a HOT update (no new entry in any index). Removing a platform finds its sessions by user.
    index('sessions_expires_active_idx').on(t.expiresAt).where(sql`${t.status} = 'active'`),
    index('sessions_created_idx').on(t.createdAt),
    // Small by design: only endings whose follow-up has not finished (the repair pass reads it every second).
    index('sessions_unfinalized_idx').on(t.endedAt).where(sql`${t.status} = 'ended' and ${t.finalizedAt} is null`),
  ],
)

export const loginAttempts = pgTable(
  'login_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    userId: integer('user_id').references(() => users.id, { onDelete: 'set null' }),
    username: text('username').notNull(),
    ip: inet('ip'),
    userAgent: text('user_agent'),
    deviceKey: text('device_key'),
    success: boolean('success').notNull(),
    reason: text('reason').notNull(),
    method: text('method').notNull().default('password'),
    sessionId: uuid('session_id'),
    flags: jsonb('flags').$type<string[]>().notNull().default([]),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    index('login_attempts_user_at_idx').on(t.userId, t.at),
    index('login_attempts_at_idx').on(t.at),
    index('login_attempts_ip_idx').on(t.ip),
  ],
)

export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    type: text('type').notNull(),
    actorUserId: integer('actor_user_id'),
    userId: integer('user_id'),
    sessionId: uuid('session_id'),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    at: ts('at').notNull().defaultNow(),
  },
  (t) => [
    index('audit_events_session_idx').on(t.sessionId, t.id),
    index('audit_events_user_idx').on(t.userId, t.id),
    index('audit_events_at_idx').on(t.at),
    index('audit_events_type_idx').on(t.type, t.id),
  ],
)

/** A lock belongs to a session; it goes with the session (released by the session-ended job, or cascaded). */
export const locks = pgTable(
  'locks',
  {
    resource: text('resource').primaryKey(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull(),
    acquiredAt: ts('acquired_at').notNull().defaultNow(),
  },
  (t) => [index('locks_session_idx').on(t.sessionId), check('locks_resource_length', sql`char_length(${t.resource}) between 1 and 200`)],
)

/**
 * Files uploaded by a session (uploads/), stored under `key` in the upload storage; the
 * cleanup job removes both once the session has ended and the retention has passed.
 */
export const uploads = pgTable(
  'uploads',
  {
    id: uuid('id').primaryKey(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    userId: integer('user_id').notNull(),
    key: text('key').notNull().unique(),
    name: text('name').notNull(),
    size: integer('size').notNull(),
    contentType: text('content_type').notNull(),
    uploadedAt: ts('uploaded_at').notNull().defaultNow(),
  },
  (t) => [index('uploads_session_idx').on(t.sessionId)],
)

/**
 * Events of platform changes (a switch, a deleted connection), written in the change's
 * transaction and deleted once published: a row left here is an event still to publish
 * (platforms/outbox.ts).
 */
export const sessionEventOutbox = pgTable(
  'session_event_outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    sessionId: uuid('session_id')
      .notNull()
      .references(() => sessions.id, { onDelete: 'cascade' }),
    /** The session state version the event announces. */
    version: integer('version').notNull(),
    event: jsonb('event').$type<{ type: string } & Record<string, unknown>>().notNull(),
    /** The session's end of lifetime: how long its event log keeps the seq. */
    keepUntil: ts('keep_until').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [index('session_event_outbox_session_idx').on(t.sessionId, t.id), index('session_event_outbox_created_idx').on(t.createdAt)],
)

/**
 * Alerts for administrators (failed-login threshold, lockout, anomalies, fingerprint
 * mismatch). `dedupe_key` is type, user and when the alert's window opened; the window
 * itself, which makes a second raise a no-op, is a Redis key (alerts/service.ts).
 */
export const alerts = pgTable(
  'alerts',
  {
    id: serial('id').primaryKey(),
    type: text('type').notNull(),
    userId: integer('user_id').references(() => users.id, { onDelete: 'set null' }),
    username: text('username').notNull(),
    message: text('message').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull().default({}),
    dedupeKey: text('dedupe_key').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    acknowledgedAt: ts('acknowledged_at'),
    acknowledgedBy: integer('acknowledged_by'),
    /** Stored with the alert while its delivery is still to be queued (a sink is configured); the repair pass queues it. */
    deliveryPending: boolean('delivery_pending').notNull().default(false),
  },
  (t) => [
    uniqueIndex('alerts_dedupe_key').on(t.dedupeKey),
    index('alerts_type_idx').on(t.type, t.id),
    index('alerts_unacknowledged_idx').on(t.id).where(sql`${t.acknowledgedAt} is null`),
    // Small by design: only alerts whose delivery is not queued yet (the repair pass reads it every second).
    index('alerts_delivery_pending_idx').on(t.createdAt).where(sql`${t.deliveryPending}`),
  ],
)

/**
 * The values of the runtime Settings record as stored: the shape of SettingsValues
 * (src/settings/schemas.ts), which the settings service reads and writes as this type, so
 * the compiler refuses the two if they drift apart.
 */
export type StoredSettings = {
  idleAfterSeconds: number
  idleTimeoutSeconds: number
  lifetimeSeconds: number
  idleWarningSeconds: number
  concurrentLimits: { byRole: Record<string, number>; byUser: Record<string, number>; default: number }
  limitPolicy: 'terminate_oldest' | 'block_new'
  failedLogin: { threshold: number; windowSeconds: number; lockoutEnabled: boolean; lockoutSeconds: number; byUser: Record<string, number> }
  anomaly: { distinctIps: number; windowHours: number }
}

/** The runtime Settings record: one row, versioned. */
export const settings = pgTable('settings', {
  id: integer('id').primaryKey().default(1),
  data: jsonb('data').$type<StoredSettings>().notNull(),
  version: integer('version').notNull().default(1),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  updatedBy: integer('updated_by'),
})

/** Secrets generated by the service itself (development SESSION_SECRET), shared by every node. */
export const appSecrets = pgTable('app_secrets', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
})
