// Error codes of the settings feature.
import { AppError, validationFailed } from '../infra/errors.js'
import type { Settings } from './schemas.js'

export const versionConflict = (current: Settings) =>
  new AppError(409, 'VERSION_CONFLICT', `Settings changed meanwhile (now version ${current.version}); reload and retry.`, { current })

export const timeoutNotAfterIdle = (idleTimeoutSeconds: number, idleAfterSeconds: number) =>
  validationFailed(`idleTimeoutSeconds (${idleTimeoutSeconds}) must be more than idleAfterSeconds (${idleAfterSeconds})`)

export const warningNotBeforeTimeout = (idleWarningSeconds: number, idleTimeoutSeconds: number) =>
  validationFailed(`idleWarningSeconds (${idleWarningSeconds}) must be less than idleTimeoutSeconds (${idleTimeoutSeconds})`)

export const unknownRole = (role: string, roles: readonly string[]) =>
  validationFailed(`concurrentLimits.byRole.${role}: unknown role; expected one of ${roles.join(', ')}`)
