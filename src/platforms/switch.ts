// A platform switch as one statement: the target platform, the session's row (locked, so
// that concurrent switches of one session take turns), its current platform, the update,
// the audit event and the outbox row of the event, with no transaction around them. Either
// everything is written or nothing (R3); what was refused is decided from the same row.
// It also returns the session's pending outbox rows, its own new one included, so that
// they are published after it without reading them back.
import { sql } from 'drizzle-orm'
import { type Db, executePrepared } from '../infra/db.js'
import { SERVER_MESSAGES } from '../realtime/protocol.js'

export interface SwitchRequest {
  sessionId: string
  userId: number
  platformId: number
  /** The session's version the caller saw; a switch of any other version is refused (409). */
  expectedVersion: number | null
  byTabId: string | null
  /** The session's end of lifetime: how long the event's log keeps it. */
  keepUntil: Date
  /** Whether the switch writes its audit event (Audit.enabled). */
  audit: boolean
}

/** What the statement found and did: every column null when there was nothing to find. */
export type SwitchRow = {
  targetId: number | null
  targetName: string | null
  targetType: 'pixelfed' | 'mastodon' | 'other' | null
  targetInstanceUrl: string | null
  targetIsDefault: boolean | null
  targetActive: boolean | null
  /** The session's row as locked (before the update). */
  status: 'active' | 'ended' | null
  endReason: string | null
  endNote: string | null
  currentId: number | null
  version: number | null
  /** The session's version after the switch; null when nothing was switched. */
  newVersion: number | null
  /** The session's platform before the switch (the current one when nothing was switched). */
  previousId: number | null
  previousName: string | null
  previousType: 'pixelfed' | 'mastodon' | 'other' | null
  previousInstanceUrl: string | null
  previousIsDefault: boolean | null
  /** The session's outbox rows to publish, oldest first: any left by earlier changes, then this switch's. */
  pending: { id: number; version: number; event: { type: string } & Record<string, unknown>; keepUntil: string }[]
}

const platformJson = (p: string) =>
  sql.raw(`jsonb_build_object('id', ${p}.id, 'name', ${p}.name, 'type', ${p}.type, 'instanceUrl', ${p}.instance_url, 'isDefault', ${p}.is_default)`)

/**
 * Runs the switch. It updates the session only when the platform is the user's and active,
 * the session is active, at the expected version (if any), and on another platform; the
 * audit event and the outbox row come with the update or not at all.
 */
export async function runSwitch(db: Db, r: SwitchRequest): Promise<SwitchRow> {
  const type = SERVER_MESSAGES.platformSwitched
  const [row] = await executePrepared<SwitchRow>(
    db,
    sql`
    with target as (
      select id, name, type, instance_url, is_default, active from platforms where user_id = ${r.userId} and id = ${r.platformId}
    ), cur as (
      select id, active_platform_id, version, status, end_reason, end_note from sessions where id = ${r.sessionId} for update
    ), previous as (
      select p.id, p.name, p.type, p.instance_url, p.is_default from platforms p join cur c on p.id = c.active_platform_id
      where p.user_id = ${r.userId}
    ), switched as (
      update sessions set active_platform_id = ${r.platformId}, version = sessions.version + 1
      from cur c, target t
      where sessions.id = c.id and c.status = 'active' and t.active
        and (${r.expectedVersion}::bigint is null or c.version = ${r.expectedVersion}::bigint)
        and c.active_platform_id is distinct from ${r.platformId}::int
      returning sessions.version
    ), audited as (
      insert into audit_events (type, user_id, session_id, data)
      select ${type}::text, ${r.userId}::int, ${r.sessionId}::uuid,
        jsonb_build_object('from', c.active_platform_id, 'to', ${r.platformId}::int, 'version', s.version, 'byTabId', ${r.byTabId}::text)
      from switched s, cur c where ${r.audit}::boolean
    ), queued as (
      insert into session_event_outbox (session_id, version, event, keep_until)
      select ${r.sessionId}::uuid, s.version,
        jsonb_build_object('type', ${type}::text, 'platform', (select ${platformJson('t')} from target t),
          'previousPlatform', (select ${platformJson('p')} from previous p), 'version', s.version, 'byTabId', ${r.byTabId}::text),
        ${r.keepUntil.toISOString()}::timestamptz
      from switched s
      returning id, version, event, keep_until
    ), pending as (
      select id, version, event, keep_until from session_event_outbox where session_id = ${r.sessionId}::uuid
      union all select id, version, event, keep_until from queued
    )
    select t.id as "targetId", t.name as "targetName", t.type as "targetType", t.instance_url as "targetInstanceUrl",
      t.is_default as "targetIsDefault", t.active as "targetActive",
      c.status, c.end_reason as "endReason", c.end_note as "endNote", c.active_platform_id as "currentId", c.version,
      (select version from switched) as "newVersion",
      p.id as "previousId", p.name as "previousName", p.type as "previousType", p.instance_url as "previousInstanceUrl",
      p.is_default as "previousIsDefault",
      (select coalesce(jsonb_agg(jsonb_build_object('id', q.id, 'version', q.version, 'event', q.event, 'keepUntil', q.keep_until) order by q.id), '[]')
        from pending q) as "pending"
    from (select 1) one left join target t on true left join cur c on true left join previous p on true`,
    'platform_switch',
  )
  return row!
}
