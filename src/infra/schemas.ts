// TypeBox pieces shared by every feature's route schemas.
import { Type } from 'typebox'

export const ErrorBody = Type.Object(
  {
    error: Type.Object(
      { code: Type.String({ description: 'SNAKE_CASE error code' }), message: Type.String() },
      { additionalProperties: true },
    ),
  },
  { $id: 'ErrorBody', description: 'Every error has this shape, with extra fields where listed' },
)

/** `4xx`/`5xx` entries for a route's response map, so OpenAPI shows the error shape. */
export const errors = { '4xx': ErrorBody, '5xx': ErrorBody } as const

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()])

export const Uuid = Type.String({ format: 'uuid', maxLength: 36 })
export const IsoTime = Type.String({ format: 'date-time' })
export const IdParam = Type.Integer({ minimum: 1, maximum: 2_147_483_647 })
export const Cursor = Type.String({ maxLength: 200 })
export const NoContent = Type.Null({ description: 'No content' })
