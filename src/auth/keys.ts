// The auth feature's Redis keys (the shared prefix and tags are in infra/keys.ts).
import type { InfraKeys } from '../infra/keys.js'

export function authKeys({ prefix, space }: InfraKeys) {
  return {
    /** failed logins of one username (known or not, so both answer alike) within the window */
    failedLogins: (username: string) => `${space.username(username)}:failed`,
    /** a lockout of a username, set by the failure that began it (a known account's is also in PostgreSQL) */
    lockedName: (username: string) => `${space.username(username)}:locked`,
    /** An identity provider's ID token (by its hash) that opened a session: accepted once. */
    usedIdToken: (hash: string) => `${prefix}idtoken:${hash}`,
  }
}

export type AuthKeys = ReturnType<typeof authKeys>
