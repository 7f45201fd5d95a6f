// POST /api/session/generate-uuid's promise: a UUID v4 that no session uses. A collision of
// random v4 values is all but impossible, but the answer is checked, not assumed.
import { randomUUID } from 'node:crypto'
import type { Sql } from '../infra/db.js'

/** A UUID from `next` (random v4 by default) that no row of `sessions` has as its id. */
export async function unusedSessionUuid(sql: Sql, next: () => string = randomUUID): Promise<string> {
  for (;;) {
    const uuid = next()
    const [row] = await sql`select 1 from sessions where id = ${uuid}`
    if (!row) return uuid
  }
}
