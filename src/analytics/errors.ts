// Error codes of the analytics feature: a range it cannot answer.
import { validationFailed } from '../infra/errors.js'

export const rangeNotForward = () => validationFailed('querystring.from must be before querystring.to')
export const rangeTooLong = () => validationFailed('querystring.from and querystring.to must be at most 366 days apart')
export const tooManyBuckets = (buckets: number, max: number) => validationFailed(`querystring.bucket gives ${buckets} buckets; at most ${max} are allowed`)
export const unknownTimeZone = () => validationFailed('querystring.tz must be an IANA time zone name such as Europe/Oslo')
