// The lock that serialises one user's logins and session-limit decisions across every node.
/** Advisory lock class of one user's logins (the second key is the user id). */
export const LOGIN_LOCK = 1953719668

/** A login's password was checked against credentials that have changed since (or the account was disabled). */
export class CredentialsChanged extends Error {
  constructor() {
    super('the credentials changed while the login was under way')
  }
}
