// What every route of the HTTP API (under /api/ and /admin/) gets unless it says otherwise:
// - a route that takes no query or body still has a schema for them, so an unknown field is
//   refused with `400 VALIDATION_FAILED` on every route alike (http.md: unknown fields are
//   rejected or ignored consistently), not only where a route happens to list its fields;
// - `Cache-Control: no-store`: every answer of the API is one user's or one session's state.
// The pages, their assets and the operations routes keep their own caching.
import type { FastifyInstance, RouteOptions } from 'fastify'
import { Type } from 'typebox'

const API_PATH = /^\/(api|admin)\//
const TAKES_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Nothing may be sent here: no field at all. A bodiless request counts as `{}`. */
const NO_FIELDS = Type.Object({}, { additionalProperties: false })

function takesBody(route: RouteOptions): boolean {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  // Multipart routes (uploads) read their parts themselves.
  return methods.some((m) => TAKES_BODY.has(m)) && route.schema?.consumes === undefined
}

export function installApiRouteDefaults(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    if (!API_PATH.test(route.url)) return
    const schema = route.schema ?? {}
    route.schema = {
      ...schema,
      querystring: schema.querystring ?? NO_FIELDS,
      ...(schema.body === undefined && takesBody(route) ? { body: NO_FIELDS } : {}),
    }
    route.config = { ...route.config, noStore: route.config?.noStore ?? true }
  })
}
