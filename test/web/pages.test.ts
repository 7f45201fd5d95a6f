// The built demo app at /: HTML under a Content-Security-Policy with no inline script,
// assets cached for good, the HTML revalidated, and unknown pages still 404 in the error shape.
import t from 'tap'
import { build } from '../helpers/app.js'

t.test('GET / is the demo app under a CSP that allows no inline script', async (t) => {
  const app = await build(t)
  const res = await app.app.inject({ method: 'GET', url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.equal(res.headers['cache-control'], 'no-cache', 'the HTML is revalidated on every load')
  t.match(res.body, /<div id="root"><\/div>/)
  t.notMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script of the page is a file')
  const csp = String(res.headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.notMatch(csp, /script-src[^;]*unsafe-inline/, 'no inline script is allowed')
  t.ok(res.headers['x-content-type-options'], 'the security headers too')

  const asset = res.body.match(/src="(\/assets\/[^"]+\.js)"/)?.[1]
  t.ok(asset, 'the page loads a hashed script')
  const js = await app.app.inject({ method: 'GET', url: asset! })
  t.equal(js.statusCode, 200)
  t.match(js.headers['content-type'], /javascript/)
  t.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable', 'hashed assets are cached for good')

  const missing = await app.app.inject({ method: 'GET', url: '/assets/nope.js' })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error.code, 'NOT_FOUND')
})
