// Error codes of the auth feature: sign-in, passwords, identity providers, accounts.
import { AppError, count, serviceUnavailable, validationFailed } from '../infra/errors.js'

export const invalidCredentials = () => new AppError(401, 'INVALID_CREDENTIALS', 'The username or password is wrong.')

export const currentPasswordWrong = () =>
  new AppError(401, 'INVALID_CREDENTIALS', 'The current password is wrong; the password was not changed. Your session stays signed in.')

export function accountLocked(until: Date) {
  const retryAfterSeconds = Math.max(1, Math.ceil((until.getTime() - Date.now()) / 1000))
  return new AppError(
    423,
    'ACCOUNT_LOCKED',
    `Too many failed sign-ins: this account is locked for ${count(retryAfterSeconds, 'more second')}.`,
    { retryAfterSeconds },
    { 'retry-after': String(retryAfterSeconds) },
  )
}

export const passwordTooShort = (min: number) => new AppError(400, 'WEAK_PASSWORD', `The password needs at least ${min} characters.`)
export const passwordIsUsername = () => new AppError(400, 'WEAK_PASSWORD', 'The password must not be the username.')

export const lastAdmin = () => new AppError(409, 'LAST_ADMIN', 'This is the last enabled admin; make another admin first.')

export const usernameTaken = (username: string) => new AppError(409, 'USERNAME_TAKEN', `The username ${username} is taken.`)

export const platformNotUsable = () => validationFailed('body.platformId does not name one of your active platform connections')

export const userIdTooLarge = (given: string) =>
  validationFailed(`querystring.user must be a username or a user id up to 2147483647; ${given.slice(0, 30)} is neither`)

export const invalidToken = (why: string) => new AppError(401, 'INVALID_TOKEN', `The identity provider's token was refused: ${why}.`)
export const oidcNotConfigured = () => new AppError(404, 'NOT_FOUND', 'Sign-in with an identity provider is not configured on this server (OIDC_ISSUER).')
export const identityProviderUnavailable = () => serviceUnavailable('The identity provider')
