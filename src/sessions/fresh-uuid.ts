// POST /api/session/generate-uuid's promise: a UUID v4 that no session uses. A collision of
// random v4 values is all but impossible, but the answer is checked, not assumed.
import { randomUUID } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { sessions } from '../../db/schema.js'
import type { Queryable } from '../infra/db.js'

/** Whether a session (of any status) has `uuid` as its id. */
export async function sessionIdInUse(db: Queryable, uuid: string): Promise<boolean> {
  const [row] = await db.select({ id: sessions.id }).from(sessions).where(eq(sessions.id, uuid))
  return row !== undefined
}

/** A UUID from `next` (random v4 by default) that no row of `sessions` has as its id. */
export async function unusedSessionUuid(db: Queryable, next: () => string = randomUUID): Promise<string> {
  for (;;) {
    const uuid = next()
    if (!(await sessionIdInUse(db, uuid))) return uuid
  }
}
