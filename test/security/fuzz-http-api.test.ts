// S7, HTTP: the routes under /api/auth, /api/session and /api/sessions, and the operations
// routes, of the OpenAPI document, fuzzed (fuzz-http.ts).
import t from 'tap'
import { fuzzRoutes, inFirstApiHalf } from './fuzz-http.js'

// 1,000 cases for each of a dozen routes on a shared 2-core machine take minutes.
t.setTimeout(900_000)

t.test('these routes answer generated input with a 2xx or a 4xx in the error shape; a canary tab keeps its events', (t) =>
  fuzzRoutes(t, (op) => inFirstApiHalf(op.path)),
)
