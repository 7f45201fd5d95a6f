// Session-scoped uploads (docs/api.md, "Session-scoped uploads"): upload a PDF, list this
// session's files, fetch one. The multipart parser is registered here only.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import multipart from '@fastify/multipart'
import { Type } from 'typebox'
import { authOf, requireSession } from '../sessions/guards.js'
import { fileMissing, fileUnnamed, malformedMultipart, notMultipart, notTheFileField } from './errors.js'
import { LingeringBodies } from './linger.js'
import { errors, IsoTime, Uuid } from '../infra/schemas.js'

const UploadSchema = Type.Object({
  id: Uuid,
  key: Type.String({ description: 'uploads/{sessionId}/{uuid}-{name}' }),
  name: Type.String(),
  size: Type.Integer(),
  contentType: Type.String(),
  uploadedAt: IsoTime,
})

// The multipart parser's own errors (a body cut short, a broken part header) carry no
// status: they are the client's malformed body, not a failure of ours.
const MULTIPART_BROKEN = /multipart|part header|boundary/i
function malformed(err: unknown): never {
  if (err instanceof Error && !('statusCode' in err && err.statusCode) && MULTIPART_BROKEN.test(err.message)) {
    throw malformedMultipart(err.message)
  }
  throw err
}

export const uploadRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const session = requireSession(app)
  const { maxBytes } = app.config.uploads
  // One file per request. The parser stops reading a file one byte past the limit, so a
  // larger one is refused (sizeLimit in content.ts) without being kept anywhere.
  await app.register(multipart, { limits: { fileSize: maxBytes + 1, files: 1, fields: 10, parts: 20, fieldNameSize: 100 }, throwFileSizeLimit: false })
  const lingering = new LingeringBodies()
  app.addHook('preClose', (done) => {
    lingering.closeAll()
    done()
  })

  app.post(
    '/api/session/uploads',
    {
      onRequest: session,
      schema: {
        tags: ['session'],
        summary: 'Upload a PDF to this session (multipart/form-data, field `file`)',
        consumes: ['multipart/form-data'],
        response: { 201: UploadSchema, ...errors },
      },
    },
    async (req, reply) => {
      if (!req.isMultipart()) throw notMultipart()
      const part = await req.file().catch(malformed)
      if (!part) throw fileMissing()
      if (part.fieldname !== 'file' || !part.filename) {
        part.file.resume()
        throw part.fieldname !== 'file' ? notTheFileField(part.fieldname) : fileUnnamed()
      }
      const { session: s } = authOf(req)
      const upload = await app.uploads.store({ sessionId: s.id, userId: s.userId }, { filename: part.filename, stream: part.file }).catch((err: unknown) => {
        // Already answered (the body stopped arriving: 408); the partial file is gone.
        if (reply.sent) return null
        lingering.discardRest(req.raw)
        return malformed(err)
      })
      return upload ? reply.code(201).send(upload) : reply
    },
  )

  app.get(
    '/api/session/uploads',
    { onRequest: session, schema: { tags: ['session'], summary: "This session's uploads", response: { 200: Type.Object({ items: Type.Array(UploadSchema) }), ...errors } } },
    async (req) => ({ items: await app.uploads.list(authOf(req).session.id) }),
  )

  app.get(
    '/api/session/uploads/:id',
    {
      onRequest: session,
      schema: { tags: ['session'], summary: "One of this session's uploads, as a download", params: Type.Object({ id: Uuid }), response: errors },
    },
    async (req, reply) => {
      const { id } = req.params
      const { upload, body } = await app.uploads.open(authOf(req).session.id, id.toLowerCase())
      return reply
        .header('content-type', upload.contentType)
        .header('content-length', upload.size)
        .header('content-disposition', `attachment; filename="${upload.name.replaceAll('"', '')}"`)
        .header('cache-control', 'private, no-store')
        // The file's bytes, streamed: no response schema describes them (the route lists only its errors).
        .send(body as never)
    },
  )
}
