// Errors raised before a route runs, in the contract's shape and with the same headers as
// every other answer (http.md, Conventions): an undecodable URL escape or an over-long path
// parameter (Fastify's router, through `frameworkErrors`), and requests Node's HTTP parser
// refuses (a malformed request line, headers or cookies past the size limit: `clientError`).
// Fastify's and Node's own answers have other body shapes (or none) and no security headers.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import type { ErrorCode } from '../realtime/protocol.js'
import { errorBody } from './errors.js'

/** The security headers every answer carries (infra/security-headers.ts). */
export type HeaderList = readonly (readonly [string, string | string[]])[]

/** What each pre-route failure answers: status, code and a sentence a person can act on. */
function describe(code: string | undefined, routerMaxParamLength: number): { status: number; code: ErrorCode; message: string } {
  switch (code) {
    case 'FST_ERR_BAD_URL':
      return { status: 400, code: 'BAD_REQUEST', message: 'The URL holds a percent-escape that is not valid UTF-8 (such as a lone "%"); encode the path with encodeURIComponent.' }
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return {
        status: 400,
        code: 'VALIDATION_FAILED',
        message: `params: a path parameter is longer than ${routerMaxParamLength} characters, longer than any value the route accepts.`,
      }
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'HEADERS_TOO_LARGE',
        message: 'The request headers (cookies included) are larger than the server accepts; clear this site’s cookies or send fewer headers.',
      }
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return { status: 408, code: 'REQUEST_TIMEOUT', message: 'The request took too long to arrive; send it again.' }
    default:
      return { status: 400, code: 'BAD_REQUEST', message: 'The request is not well-formed HTTP/1.1 and could not be read.' }
  }
}

/** Sets the CORS headers an answer to this request carries (auth/cors.ts). */
export type CorsHeaders = (req: FastifyRequest, reply: FastifyReply) => unknown

/** Fastify's `frameworkErrors` option: the router's refusals, through a normal reply. */
export function frameworkErrors(headers: HeaderList, cors: CorsHeaders, routerMaxParamLength: number) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const { status, code, message } = describe(err.code, routerMaxParamLength)
    for (const [name, value] of headers) reply.header(name, value)
    reply.header('x-request-id', req.id)
    // The route's hooks do not run, so neither does the CORS hook: a page of an allowed
    // origin must still be able to read why it was refused.
    cors(req, reply)
    req.log.info({ code: err.code, url: req.url.slice(0, 200) }, 'request refused before routing')
    return reply.code(status).send(errorBody(code, message))
  }
}

/**
 * Fastify's `clientErrorHandler` option: Node's parser refused the request, so there is no
 * request object, only the socket. The answer is written by hand, then the connection closed.
 */
export function clientErrorHandler(headers: HeaderList) {
  return (err: NodeJS.ErrnoException, socket: Socket) => {
    // A reset connection has nobody to answer (Fastify's default handler does the same).
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const { status, code, message } = describe(err.code, 0)
    const body = JSON.stringify(errorBody(code, message))
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
      'content-type: application/json; charset=utf-8',
      `content-length: ${Buffer.byteLength(body)}`,
      `x-request-id: ${randomUUID()}`,
      'connection: close',
    ]
    for (const [name, value] of headers) for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`)
    if (!socket.writable) return socket.destroy()
    // Ended rather than destroyed at once, so that the client reads the answer before the
    // connection goes; a client that never closes its side is cut off soon after.
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`)
    setTimeout(() => socket.destroy(), 1000).unref()
  }
}

/** How long a request may wait for its headers, and a body may fall silent, before `408`. */
export const ARRIVAL_LIMITS = { headersMs: 20_000, bodySilenceMs: 10_000 }

/**
 * A request whose body stops arriving (a client that sent fewer bytes than its
 * Content-Length, or a chunked body that never ends) is answered `408 REQUEST_TIMEOUT` once
 * nothing has come for `silenceMs`, and its connection closed: it never holds a route, a
 * socket or the client in wait (quality.md S7: never a hang). A slow upload that keeps
 * coming is not cut. Node's own limit is on the whole request, which an upload on a slow
 * network may rightly exceed; Fastify turns it off.
 */
export function refuseStalledBodies(app: FastifyInstance, silenceMs: number): void {
  const watch: onRequestHookHandler = (req, reply, done) => {
    if (hasBody(req)) watchBody(req, reply, silenceMs)
    done()
  }
  // Only on routes that read a body: GET routes (session_state, the socket) pay nothing.
  app.addHook('onRoute', (route) => {
    if (![route.method].flat().some((m) => BODY_METHODS.has(m))) return
    route.onRequest = [watch, ...[route.onRequest ?? []].flat()]
  })
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length']
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
}

function watchBody(req: FastifyRequest, reply: FastifyReply, silenceMs: number): void {
  const socket = req.raw.socket
  let bytesRead = socket.bytesRead
  let timer: NodeJS.Timeout | undefined
  const check = () => {
    if (req.raw.complete || reply.sent) return
    if (socket.bytesRead > bytesRead) {
      bytesRead = socket.bytesRead
      timer = setTimeout(check, silenceMs).unref()
      return
    }
    req.log.info({ url: req.url.slice(0, 200), silenceMs }, 'request body stopped arriving')
    const { status, code, message } = describe('ERR_HTTP_REQUEST_TIMEOUT', 0)
    // Ended once the answer is out, so that a route still reading the body (an upload)
    // learns that it ends here and drops what it began to store.
    reply.raw.once('finish', () => req.raw.destroy())
    void reply.code(status).header('connection', 'close').send(errorBody(code, message))
  }
  timer = setTimeout(check, silenceMs).unref()
  reply.raw.once('close', () => clearTimeout(timer))
}
