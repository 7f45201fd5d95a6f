// Session tokens: 32 random bytes in the cookie, only their SHA-256 hash anywhere else.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { UAParser } from 'ua-parser-js'

export const newToken = () => randomBytes(32).toString('base64url')

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex')

/** What the session is bound to when fingerprinting is on: user agent and accept-language. */
export function fingerprintOf(userAgent: string | undefined, acceptLanguage: string | undefined): string {
  return createHash('sha256')
    .update(`${userAgent ?? ''}\n${acceptLanguage ?? ''}`)
    .digest('hex')
}

/** A CSRF token bound to the session: an HMAC of its id, so nothing needs storing. */
export function csrfTokenFor(secret: string, sessionId: string): string {
  return createHmac('sha256', secret).update(`csrf:${sessionId}`).digest('base64url')
}

export function csrfTokenMatches(secret: string, sessionId: string, presented: string | undefined): boolean {
  if (!presented) return false
  const expected = Buffer.from(csrfTokenFor(secret, sessionId))
  const given = Buffer.from(presented)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export interface Device {
  browser: string | null
  os: string | null
  type: string
}

export function parseDevice(userAgent: string | undefined): Device {
  const r = UAParser(userAgent ?? '')
  const browser = r.browser.name ? `${r.browser.name}${r.browser.major ? ` ${r.browser.major}` : ''}` : null
  return { browser, os: r.os.name ?? null, type: r.device.type ?? 'desktop' }
}

/** Identifies "the same device" across logins for the new-device flag. */
export const deviceKey = (d: Device) => `${d.browser?.split(' ')[0] ?? '?'}|${d.os ?? '?'}|${d.type}`
