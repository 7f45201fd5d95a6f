// S7, HTTP: every route outside /admin of the OpenAPI document, fuzzed (fuzz-http.ts).
import t from 'tap'
import { fuzzRoutes } from './fuzz-http.js'

t.test('every route outside /admin answers generated input with a 2xx or a 4xx in the error shape; a canary tab keeps its events', (t) =>
  fuzzRoutes(t, (op) => !op.path.startsWith('/admin')),
)
