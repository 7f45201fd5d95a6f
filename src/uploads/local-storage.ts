// Uploads in a local directory: written to a `.part` file and renamed once complete, so a
// refused or broken upload never leaves a file that looks whole.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, rmdir } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { UploadStorage } from './storage.js'

export class LocalStorage implements UploadStorage {
  private readonly root: string

  constructor(dir: string) {
    this.root = resolve(dir)
  }

  async put(key: string, body: Readable): Promise<void> {
    const path = this.pathOf(key)
    await mkdir(dirname(path), { recursive: true })
    const part = `${path}.part`
    try {
      await pipeline(body, createWriteStream(part, { flags: 'wx' }))
      await rename(part, path)
    } catch (err) {
      await rm(part, { force: true })
      throw err
    }
  }

  async get(key: string): Promise<Readable> {
    return createReadStream(this.pathOf(key))
  }

  async remove(keys: string[]): Promise<void> {
    const folders = new Set<string>()
    for (const key of keys) {
      const path = this.pathOf(key)
      await rm(path, { force: true })
      folders.add(dirname(path))
    }
    // A session's folder goes with its last file.
    for (const folder of folders) await rmdir(folder).catch(() => {})
  }

  /** The file of a key, which can never lie outside the upload directory. */
  private pathOf(key: string): string {
    const path = resolve(join(this.root, key))
    if (!path.startsWith(this.root + sep)) throw new Error(`upload key outside the upload directory: ${key}`)
    return path
  }
}
