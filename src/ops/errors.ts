// Error codes of the operations routes.
import { AppError } from '../infra/errors.js'

export const metricsUnauthenticated = () => new AppError(401, 'UNAUTHENTICATED', 'Metrics need Authorization: Bearer <METRICS_TOKEN>.')
