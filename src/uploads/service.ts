// Session-scoped uploads: PDF only (by content), at most UPLOAD_MAX_BYTES (checked while the
// bytes stream, nothing buffered beyond that), stored under the session's folder, listed
// and fetched by that session alone, audited, and removed after the session has ended and
// the retention has passed.
import { randomUUID } from 'node:crypto'
import type { Readable } from 'node:stream'
import { and, asc, eq, inArray, lt, sql } from 'drizzle-orm'
import { sessions, uploads } from '../../db/schema.js'
import type { Audit } from '../audit/service.js'
import type { Db } from '../infra/db.js'
import type { Upload } from '../realtime/protocol.js'
import { pdfCheck, safeName, sizeLimit } from './content.js'
import { uploadNotFound } from './errors.js'
import type { UploadStorage } from './storage.js'

export const PDF = 'application/pdf'

export type { Upload }

export interface UploadsDeps {
  db: Db
  storage: UploadStorage
  audit: Audit
  maxBytes: number
}

const columns = { id: uploads.id, key: uploads.key, name: uploads.name, size: uploads.size, contentType: uploads.contentType, uploadedAt: uploads.uploadedAt }

const toUpload = (r: { id: string; key: string; name: string; size: number; contentType: string; uploadedAt: Date }): Upload => ({
  ...r,
  uploadedAt: r.uploadedAt.toISOString(),
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
      const [row] = await this.d.db
        .insert(uploads)
        .values({ id, sessionId: owner.sessionId, userId: owner.userId, key, name, size, contentType: PDF })
        .returning(columns)
      await this.d.audit.record({ type: 'upload.stored', userId: owner.userId, sessionId: owner.sessionId, data: { key, name, size } })
      return toUpload(row!)
    } catch (err) {
      await this.d.storage.remove([key]).catch(() => {})
      throw err
    }
  }

  async list(sessionId: string): Promise<Upload[]> {
    const rows = await this.d.db.select(columns).from(uploads).where(eq(uploads.sessionId, sessionId)).orderBy(asc(uploads.uploadedAt), asc(uploads.id))
    return rows.map(toUpload)
  }

  /** One of the session's files, for download; UPLOAD_NOT_FOUND for anyone else's. */
  async open(sessionId: string, id: string): Promise<{ upload: Upload; body: Readable }> {
    const [row] = await this.d.db
      .select(columns)
      .from(uploads)
      .where(and(eq(uploads.id, id), eq(uploads.sessionId, sessionId)))
    if (!row) throw uploadNotFound()
    const upload = toUpload(row)
    return { upload, body: await this.d.storage.get(upload.key) }
  }

  /** Removes the files of sessions that ended more than `retentionDays` ago; how many. */
  async purgeEnded(retentionDays: number, batchSize: number): Promise<number> {
    let removed = 0
    for (;;) {
      const rows = await this.d.db
        .select({ id: uploads.id, key: uploads.key })
        .from(uploads)
        .innerJoin(sessions, eq(sessions.id, uploads.sessionId))
        .where(and(eq(sessions.status, 'ended'), lt(sessions.endedAt, sql`now() - make_interval(days => ${retentionDays})`)))
        .orderBy(asc(uploads.id))
        .limit(batchSize)
      if (rows.length === 0) return removed
      await this.d.storage.remove(rows.map((r) => r.key))
      await this.d.db.delete(uploads).where(
        inArray(
          uploads.id,
          rows.map((r) => r.id),
        ),
      )
      removed += rows.length
      if (rows.length < batchSize) return removed
    }
  }
}
