// Session-scoped uploads: PDF only (by content), at most UPLOAD_MAX_BYTES (checked while the
// bytes stream, nothing buffered beyond that), stored under the session's folder, listed
// and fetched by that session alone, audited, and removed after the session has ended and
// the retention has passed.
import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Audit } from '../audit/service.js'
import type { Pool } from '../infra/db.js'
import { AppError } from '../infra/errors.js'
import type { Upload } from '../realtime/protocol.js'
import { pdfCheck, safeName, sizeLimit } from './content.js'
import type { UploadStorage } from './storage.js'

export const PDF = 'application/pdf'

export type { Upload }

export interface UploadsDeps {
  sql: Pool
  storage: UploadStorage
  audit: Audit
  maxBytes: number
}

export const uploadNotFound = () => new AppError(404, 'UPLOAD_NOT_FOUND', 'No such file among this session’s uploads.')

const toUpload = (r: { id: string; key: string; name: string; size: number; content_type: string; uploaded_at: Date }): Upload => ({
  id: r.id,
  key: r.key,
  name: r.name,
  size: r.size,
  contentType: r.content_type,
  uploadedAt: r.uploaded_at.toISOString(),
})

export class Uploads {
  constructor(private readonly d: UploadsDeps) {}

  /** Streams one file into storage; refused (415, 413) with nothing left behind. */
  async store(owner: { sessionId: string; userId: number }, file: { filename: string; stream: Readable }): Promise<Upload> {
    const id = randomUUID()
    const name = safeName(file.filename)
    const key = `uploads/${owner.sessionId}/${id}-${name}`
    let size = 0
    const check = pdfCheck()
    const limit = sizeLimit(this.d.maxBytes, (bytes) => (size = bytes))
    // Errors go down the chain by hand: the source must not be destroyed, since a refused
    // upload still has to be read to its end (and discarded) for the answer to reach the client.
    file.stream.on('error', (err) => check.destroy(err))
    // A part cut short by the end of the body is destroyed by the parser without an error:
    // it would never end, and storing it would wait forever. Refused as malformed instead.
    const cutShort = () => new Error('Unexpected end of multipart data: the file part was cut short')
    if (file.stream.destroyed && !file.stream.readableEnded) check.destroy(cutShort())
    file.stream.on('close', () => {
      if (!file.stream.readableEnded) check.destroy(cutShort())
    })
    check.on('error', (err) => limit.destroy(err))
    // The storage may attach to `limit` only after an await (making a folder): a refusal
    // before that must not go unheard. The storage still sees it (the stream is errored).
    limit.on('error', () => {})
    file.stream.pipe(check).pipe(limit)
    try {
      await this.d.storage.put(key, limit, PDF)
    } catch (err) {
      file.stream.unpipe(check)
      file.stream.resume()
      throw err
    }
    try {
      const [row] = await this.d.sql`insert into uploads (id, session_id, user_id, key, name, size, content_type)
        values (${id}, ${owner.sessionId}, ${owner.userId}, ${key}, ${name}, ${size}, ${PDF})
        returning id, key, name, size, content_type, uploaded_at`
      await this.d.audit.record({ type: 'upload.stored', userId: owner.userId, sessionId: owner.sessionId, data: { key, name, size } })
      return toUpload(row as Parameters<typeof toUpload>[0])
    } catch (err) {
      await this.d.storage.remove([key]).catch(() => {})
      throw err
    }
  }

  async list(sessionId: string): Promise<Upload[]> {
    const rows = await this.d.sql`select id, key, name, size, content_type, uploaded_at from uploads
      where session_id = ${sessionId} order by uploaded_at, id`
    return rows.map((r) => toUpload(r as Parameters<typeof toUpload>[0]))
  }

  /** One of the session's files, for download; UPLOAD_NOT_FOUND for anyone else's. */
  async open(sessionId: string, id: string): Promise<{ upload: Upload; body: Readable }> {
    const [row] = await this.d.sql`select id, key, name, size, content_type, uploaded_at from uploads where id = ${id} and session_id = ${sessionId}`
    if (!row) throw uploadNotFound()
    const upload = toUpload(row as Parameters<typeof toUpload>[0])
    return { upload, body: await this.d.storage.get(upload.key) }
  }

  /** Removes the files of sessions that ended more than `retentionDays` ago; how many. */
  async purgeEnded(retentionDays: number, batchSize: number): Promise<number> {
    let removed = 0
    for (;;) {
      const rows = await this.d.sql`select u.id, u.key from uploads u join sessions s on s.id = u.session_id
        where s.status = 'ended' and s.ended_at < now() - make_interval(days => ${retentionDays})
        order by u.id limit ${batchSize}`
      if (rows.length === 0) return removed
      await this.d.storage.remove(rows.map((r) => r.key as string))
      await this.d.sql`delete from uploads where id = any(${rows.map((r) => r.id as string)}::uuid[])`
      removed += rows.length
      if (rows.length < batchSize) return removed
    }
  }
}
