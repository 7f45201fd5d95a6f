// S7, HTTP: the other routes outside /admin (platforms, locks, uploads, realtime ticket) of
// the OpenAPI document, fuzzed (fuzz-http.ts).
import t from 'tap'
import { fuzzRoutes, inFirstApiHalf } from './fuzz-http.js'

t.setTimeout(900_000)

t.test('these routes answer generated input with a 2xx or a 4xx in the error shape; a canary tab keeps its events', (t) =>
  fuzzRoutes(t, (op) => !op.path.startsWith('/admin') && !inFirstApiHalf(op.path)),
)
