// The S3 storage driver against a local S3-compatible server (s3rver), through the real
// upload routes: stored in the bucket under the session's key, listed, fetched, removed.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import S3rver from 's3rver'
import t from 'tap'
import { build } from '../helpers/app.js'
import { multipartBody, samplePdf } from '../helpers/multipart.js'

const UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36'
const BUCKET = 'tessera-uploads'

t.test('uploads go to an S3-compatible bucket when S3_BUCKET is set', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tessera-s3-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, directory, silent: true, configureBuckets: [{ name: BUCKET, configs: [] }] })
  const { port } = await server.run()
  t.teardown(async () => {
    await server.close()
    await rm(directory, { recursive: true, force: true })
  })
  // The AWS SDK takes its credentials from the standard chain; s3rver's are fixed.
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER'
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER'
  const endpoint = `http://127.0.0.1:${port}`
  const app = await build(t, { S3_BUCKET: BUCKET, S3_ENDPOINT: endpoint, S3_REGION: 'us-east-1' })
  await app.user('ada')
  const ada = await app.client().signIn('ada')

  const send = (filename: string, content: Buffer) => {
    const { payload, contentType } = multipartBody({ filename }, content)
    return app.app.inject({
      method: 'POST',
      url: '/api/session/uploads',
      payload,
      headers: { 'content-type': contentType, cookie: `sid=${ada.sid}`, 'x-csrf-token': ada.csrf!, 'user-agent': UA },
    })
  }
  const res = await send('../contract.pdf', samplePdf('in the bucket'))
  t.equal(res.statusCode, 201)
  const { id, key } = res.json()
  t.match(key, new RegExp(`^uploads/${ada.sessionId}/${id}-contract\\.pdf$`))

  const s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true })
  t.teardown(() => s3.destroy())
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))
  t.same(
    listed.Contents?.map((o) => o.Key),
    [key],
    'one object, under the session’s key',
  )
  t.equal((await send('not.pdf', Buffer.from('plain text'))).statusCode, 415, 'a refused upload is not stored')
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).KeyCount, 1)

  const fetched = await ada.get(`/api/session/uploads/${id}`)
  t.equal(fetched.statusCode, 200)
  t.same(fetched.rawPayload, samplePdf('in the bucket'), 'fetched back from the bucket as sent')

  await ada.post('/api/auth/logout')
  await app.resources.database.sql`update sessions set ended_at = now() - interval '30 days' where id = ${ada.sessionId!}`
  t.equal(await app.ctx.uploads.purgeEnded(7, 10), 1)
  t.equal((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }))).KeyCount, 0, 'removed from the bucket after the retention')
})
