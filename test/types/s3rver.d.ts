// The part of s3rver (a local S3-compatible server, tests only) that the tests use.
declare module 's3rver' {
  interface Options {
    address?: string
    port?: number
    directory?: string
    silent?: boolean
    configureBuckets?: { name: string; configs: unknown[] }[]
  }
  export default class S3rver {
    constructor(options: Options)
    run(): Promise<{ address: string; port: number }>
    close(): Promise<void>
  }
}
