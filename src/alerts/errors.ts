// Error codes of the alerts feature.
import { AppError } from '../infra/errors.js'

export const alertNotFound = () => new AppError(404, 'ALERT_NOT_FOUND', 'No such alert.')
