// What an upload is judged by: its bytes (a PDF starts with `%PDF-`), its size while it
// streams, and a name that can be stored anywhere.
import { Transform, type TransformCallback } from 'node:stream'
import { notPdf, tooLarge } from './errors.js'

const PDF_MAGIC = Buffer.from('%PDF-')

/** Passes the bytes through once the first five say PDF; fails the stream otherwise. */
export function pdfCheck(): Transform {
  let head = Buffer.alloc(0)
  let checked = false
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      if (checked) return done(null, chunk)
      head = Buffer.concat([head, chunk])
      if (head.length < PDF_MAGIC.length) return done()
      checked = true
      if (!head.subarray(0, PDF_MAGIC.length).equals(PDF_MAGIC)) return done(notPdf())
      done(null, head)
    },
    flush(done: TransformCallback) {
      done(checked ? null : notPdf())
    },
  })
}

/** Counts the bytes as they stream and fails once they pass `maxBytes`, before storing more. */
export function sizeLimit(maxBytes: number, counted: (bytes: number) => void): Transform {
  let bytes = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, done: TransformCallback) {
      bytes += chunk.length
      counted(bytes)
      done(bytes > maxBytes ? tooLarge(maxBytes) : null, chunk)
    },
  })
}

/**
 * A file name safe to store: its last path segment only (either slash), letters, digits,
 * dot, dash, underscore and space, no leading dots, at most 100 characters.
 */
export function safeName(name: string | undefined): string {
  const base = (name ?? '').split(/[/\\]/).pop() ?? ''
  const cleaned = base
    .normalize('NFKC')
    .replace(/[^\p{L}\p{N}._ -]+/gu, '_')
    .replace(/^[.\s_]+/, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 100)
  return cleaned || 'file'
}
