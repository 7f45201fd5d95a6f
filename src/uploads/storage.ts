// Where uploaded files live: a local directory (the default) or an S3-compatible bucket
// (S3_BUCKET). Keys are `uploads/{sessionId}/{uuid}-{name}`, already safe when they get here.
import type { Readable } from 'node:stream'
import type { Config } from '../config.js'
import { LocalStorage } from './local-storage.js'
import { S3Storage } from './s3-storage.js'

export interface UploadStorage {
  /** Stores `body` under `key`; when `body` fails, nothing is left behind and the error is thrown. */
  put(key: string, body: Readable, contentType: string): Promise<void>
  get(key: string): Promise<Readable>
  /** Removes these keys; a key already gone is no error. */
  remove(keys: string[]): Promise<void>
}

export function createStorage(config: Config['uploads']): UploadStorage {
  if (config.s3Bucket) return new S3Storage({ bucket: config.s3Bucket, endpoint: config.s3Endpoint, region: config.s3Region, maxBytes: config.maxBytes })
  return new LocalStorage(config.dir)
}
