// Session tokens: 32 random bytes in the cookie, only their SHA-256 hash anywhere else.
import { createHash, createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto'
import { UAParser } from 'ua-parser-js'

export const newToken = () => randomBytes(32).toString('base64url')

// crypto.hash is the one-shot digest: half the CPU of createHash for a token (every signed-in request hashes one).
export const hashToken = (token: string) => hash('sha256', token, 'hex')

/**
 * What a session is bound to when fingerprinting is on (docs/api.md, "Fingerprinting"):
 * what does not change in normal use — the browser family and major version, the OS and
 * the device type, as ua-parser-js reads them from the User-Agent. Not Accept-Language
 * (people change their language preference) and not the rest of the User-Agent string.
 * Stored as it is (`v2:Chrome|140|Linux|desktop`, at most 64 characters): it is no secret,
 * the User-Agent itself is stored beside it.
 */
export function fingerprintOf(userAgent: string | undefined): string {
  const m = markOf(userAgent)
  return `v2:${m.family}|${m.major ?? ''}|${m.os}|${m.type}`.slice(0, 64)
}

/** How far the browser's major version may move within one session: automatic updates. */
export const FINGERPRINT_MAJOR_TOLERANCE = 2

interface Mark {
  family: string
  major: number | null
  os: string
  type: string
}

function markOf(userAgent: string | undefined): Mark {
  const ua = userAgent ?? ''
  const r = UAParser(ua)
  // A client ua-parser-js does not know (curl, an SDK) is named by its first product token.
  const product = /^([^\s/]+)(?:\/(\d+))?/.exec(ua)
  const family = (r.browser.name ?? product?.[1] ?? '').replaceAll('|', '_').slice(0, 30)
  const majorText = r.browser.name ? r.browser.major : product?.[2]
  const major = majorText && /^\d{1,6}$/.test(majorText) ? Number(majorText) : null
  return { family, major, os: (r.os.name ?? '').replaceAll('|', '_').slice(0, 20), type: r.device.type ?? 'desktop' }
}

function parseMark(fingerprint: string): Mark | null {
  const m = /^v2:([^|]*)\|(\d*)\|([^|]*)\|(.*)$/.exec(fingerprint)
  return m ? { family: m[1]!, major: m[2] ? Number(m[2]) : null, os: m[3]!, type: m[4]! } : null
}

/** The fingerprint sessions had before v2: a hash of User-Agent and Accept-Language. */
const legacyFingerprintOf = (userAgent: string | undefined, acceptLanguage: string | undefined) =>
  createHash('sha256').update(`${userAgent ?? ''}\n${acceptLanguage ?? ''}`).digest('hex')

/**
 * `same`: the request comes from the device the session is bound to. `drift`: the same
 * device after a browser update (major version within the tolerance) or with a User-Agent
 * that reads the same: the stored fingerprint follows it. `changed`: another browser, OS or
 * device type, or a version jump past the tolerance.
 */
export type FingerprintVerdict = 'same' | 'drift' | 'changed'

const verdicts = new Map<string, FingerprintVerdict>()

export function judgeFingerprint(stored: string, userAgent: string | undefined, acceptLanguage: string | undefined): FingerprintVerdict {
  const key = `${stored}\n${userAgent ?? ''}`
  const known = verdicts.get(key)
  if (known) return known
  const was = parseMark(stored)
  if (!was) {
    // A session from before v2 keeps working from the same browser and moves to v2.
    return stored === legacyFingerprintOf(userAgent, acceptLanguage) ? 'drift' : 'changed'
  }
  const now = markOf(userAgent)
  let verdict: FingerprintVerdict
  if (now.family !== was.family || now.os !== was.os || now.type !== was.type) verdict = 'changed'
  else if (now.major === was.major) verdict = 'same'
  else if (now.major !== null && was.major !== null && Math.abs(now.major - was.major) <= FINGERPRINT_MAJOR_TOLERANCE) verdict = 'drift'
  else verdict = 'changed'
  // Parsing a User-Agent costs more than the rest of a session check: verdicts are kept.
  if (verdicts.size >= 10_000) verdicts.clear()
  verdicts.set(key, verdict)
  return verdict
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
