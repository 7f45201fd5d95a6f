// The lock that serialises one user's logins and session-limit decisions across every node.
import { sql } from 'drizzle-orm'
import type { Tx } from '../infra/db.js'

/** Advisory lock class of one user's logins (the second key is the user id). */
export const LOGIN_LOCK = 1953719668

/** Takes the user's login lock for the rest of the transaction. */
export async function lockLogins(tx: Tx, userId: number): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${LOGIN_LOCK}, ${userId})`)
}

/** A login's password was checked against credentials that have changed since (or the account was disabled). */
export class CredentialsChanged extends Error {
  constructor() {
    super('the credentials changed while the login was under way')
  }
}
