// The WebSocket handshake checks `ws` makes, made before the upgrade route runs, so that a
// bad handshake is refused in the contract's shape with the usual headers (ws writes its
// own plain-text answer without them) and a plain GET /ws is told what it lacks.
import type { FastifyRequest } from 'fastify'
import { AppError } from '../infra/errors.js'

// RFC 6455 §4.1: a base64 nonce of 16 bytes; versions 13 and 8 (ws accepts both).
const KEY = /^[+/0-9A-Za-z]{22}==$/
const VERSIONS = new Set(['13', '8'])
// A comma-separated list of RFC 7230 tokens.
const PROTOCOLS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*$/

/** Throws the refusal of a request to /ws that `ws` would not upgrade. */
export function checkHandshake(req: FastifyRequest, isUpgrade: boolean): void {
  if (!isUpgrade) {
    throw new AppError(426, 'UPGRADE_REQUIRED', 'GET /ws is the WebSocket endpoint: open it with a WebSocket client (Upgrade: websocket).', {}, { upgrade: 'websocket' })
  }
  const h = req.headers
  if (String(h.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw new AppError(400, 'BAD_REQUEST', 'The WebSocket handshake needs the header Upgrade: websocket.')
  }
  if (typeof h['sec-websocket-key'] !== 'string' || !KEY.test(h['sec-websocket-key'])) {
    throw new AppError(400, 'BAD_REQUEST', 'The WebSocket handshake needs a Sec-WebSocket-Key of 16 random bytes in base64.')
  }
  if (!VERSIONS.has(String(h['sec-websocket-version'] ?? '').trim())) {
    throw new AppError(400, 'BAD_REQUEST', 'The WebSocket handshake needs Sec-WebSocket-Version: 13.', {}, { 'sec-websocket-version': '13, 8' })
  }
  const protocols = h['sec-websocket-protocol']
  if (protocols !== undefined) {
    const list = String(protocols).trim()
    const names = list.split(',').map((p) => p.trim())
    if (!PROTOCOLS.test(list) || new Set(names).size !== names.length) {
      throw new AppError(400, 'BAD_REQUEST', 'The Sec-WebSocket-Protocol header must be a comma-separated list of distinct tokens.')
    }
  }
}
