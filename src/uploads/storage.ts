// Where uploaded files live: a local directory (the default) or an S3-compatible bucket
// (S3_BUCKET). Keys are `uploads/{sessionId}/{uuid}-{name}`, already safe when they get here.
import type { Readable } from 'node:stream'

export interface UploadStorage {
  /** Stores `body` under `key`; when `body` fails, nothing is left behind and the error is thrown. */
  put(key: string, body: Readable, contentType: string): Promise<void>
  get(key: string): Promise<Readable>
  /** Removes these keys; a key already gone is no error. */
  remove(keys: string[]): Promise<void>
}
