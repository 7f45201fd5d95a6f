// The storage that config names: an S3-compatible bucket when S3_BUCKET is set, else a local directory.
import type { Config } from '../config.js'
import { LocalStorage } from './local-storage.js'
import { S3Storage } from './s3-storage.js'
import type { UploadStorage } from './storage.js'

export function createStorage(config: Config['uploads']): UploadStorage {
  if (config.s3Bucket) return new S3Storage({ bucket: config.s3Bucket, endpoint: config.s3Endpoint, region: config.s3Region, maxBytes: config.maxBytes })
  return new LocalStorage(config.dir)
}
