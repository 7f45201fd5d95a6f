// Error codes of the admin feature: accounts and sessions as an administrator changes them.
import { AppError, validationFailed } from '../infra/errors.js'

export const userNotFound = () => new AppError(404, 'USER_NOT_FOUND', 'No such user.')
export const sessionAlreadyEnded = () => new AppError(409, 'SESSION_ALREADY_ENDED', 'That session has already ended.')

export const badSessionId = () => validationFailed('params.id must be a session id (a UUID such as 6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c)')
export const blankReason = () => validationFailed('body.reason must say why (it is shown to the user); it cannot be only spaces')
export const rangeReversed = () => validationFailed('querystring.from must not be after querystring.to')
