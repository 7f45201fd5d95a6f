// Uploads in an S3-compatible bucket. A file is at most UPLOAD_MAX_BYTES (5 MiB by default),
// so it is collected in memory up to that limit (the size check upstream stops anything
// larger) and sent in one PutObject, whose length S3 needs up front.
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { Readable } from 'node:stream'
import type { UploadStorage } from './storage.js'

export interface S3Options {
  bucket: string
  endpoint?: string
  region?: string
  maxBytes: number
}

export class S3Storage implements UploadStorage {
  private readonly client: S3Client

  constructor(private readonly options: S3Options) {
    this.client = new S3Client({
      region: options.region ?? 'us-east-1',
      // Custom endpoints (MinIO, Ceph, local servers) address buckets by path.
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    })
  }

  async put(key: string, body: Readable, contentType: string): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of body) chunks.push(chunk as Buffer)
    const data = Buffer.concat(chunks)
    await this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: data, ContentType: contentType, ContentLength: data.length }))
  }

  async get(key: string): Promise<Readable> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }))
    return res.Body as Readable
  }

  async remove(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000)
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.options.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }))
    }
  }

  close(): void {
    this.client.destroy()
  }
}

