// multipart/form-data bodies for upload tests, built by hand: one file part, in memory or
// streamed chunk by chunk (so a test can send 50 MB without holding it).
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'

export interface FilePart {
  field?: string
  filename: string
  contentType?: string
}

function head(boundary: string, part: FilePart): Buffer {
  return Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${part.field ?? 'file'}"; filename="${part.filename}"\r\nContent-Type: ${part.contentType ?? 'application/pdf'}\r\n\r\n`,
  )
}

const tail = (boundary: string) => Buffer.from(`\r\n--${boundary}--\r\n`)

/** The whole body in memory, with its content type. */
export function multipartBody(part: FilePart, content: Buffer): { payload: Buffer; contentType: string } {
  const boundary = `tessera${randomBytes(8).toString('hex')}`
  return { payload: Buffer.concat([head(boundary, part), content, tail(boundary)]), contentType: `multipart/form-data; boundary=${boundary}` }
}

/** A body of `size` bytes of file content starting with `start`, made as it is read. */
export function streamedMultipart(part: FilePart, start: Buffer, size: number): { body: Readable; contentType: string; length: number } {
  const boundary = `tessera${randomBytes(8).toString('hex')}`
  const chunk = Buffer.alloc(256 * 1024, 'x')
  const first = head(boundary, part)
  const last = tail(boundary)
  let sent = 0
  function* pieces() {
    yield first
    yield start
    sent = start.length
    while (sent < size) {
      const n = Math.min(chunk.length, size - sent)
      sent += n
      yield n === chunk.length ? chunk : chunk.subarray(0, n)
    }
    yield last
  }
  return { body: Readable.from(pieces(), { objectMode: false }), contentType: `multipart/form-data; boundary=${boundary}`, length: first.length + size + last.length }
}

/** A small, valid PDF. */
export function samplePdf(text = 'Tessera'): Buffer {
  return Buffer.from(
    `%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]>>endobj\n% ${text}\ntrailer<</Root 1 0 R>>\n%%EOF\n`,
  )
}
