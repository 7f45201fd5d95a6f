// S7, HTTP: every /admin route of the OpenAPI document, fuzzed (fuzz-http.ts).
import t from 'tap'
import { fuzzRoutes } from './fuzz-http.js'

t.setTimeout(900_000)

t.test('every /admin route answers generated input with a 2xx or a 4xx in the error shape; a canary tab keeps its events', (t) =>
  fuzzRoutes(t, (op) => op.path.startsWith('/admin')),
)
