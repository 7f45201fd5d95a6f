// HTTP to Tessera: the cookie goes by itself; the CSRF token is held in memory only.
import { CLIENT_ERRORS, type ErrorCode } from '../../src/realtime/protocol.js'
import { SessionError } from './errors.js'

export type Fetch = (input: string, init: RequestInit) => Promise<Response>

/** What an upload needs of the browser's XMLHttpRequest (typed here: the SDK also compiles for Node). */
interface XhrLike {
  upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null }
  onerror: (() => void) | null
  onload: (() => void) | null
  status: number
  responseText: string
  withCredentials: boolean
  open(method: string, url: string): void
  setRequestHeader(name: string, value: string): void
  send(body: FormData): void
}

export class Http {
  /** Never written to storage or sent to other tabs: it lives as long as this page. */
  csrfToken: string | null = null

  constructor(
    private readonly baseUrl: string,
    private readonly fetch: Fetch,
    private readonly tabId: string,
  ) {}

  /** A request; a refused CSRF token is fetched again and the request retried once. */
  async request<T>(method: string, path: string, body?: unknown, { csrf = true } = {}): Promise<T> {
    const safe = method === 'GET' || !csrf
    if (!safe && !this.csrfToken) await this.refreshCsrf()
    try {
      return await this.send<T>(method, path, body)
    } catch (err) {
      if (safe || (err as SessionError).code !== 'CSRF_INVALID') throw err
      await this.refreshCsrf()
      return this.send<T>(method, path, body)
    }
  }

  /**
   * A multipart upload of one file (field `file`) with progress, through XMLHttpRequest:
   * fetch cannot report how much of a request body has been sent.
   */
  async upload<T>(path: string, file: Blob, name: string, onProgress?: (fraction: number) => void): Promise<T> {
    if (!this.csrfToken) await this.refreshCsrf()
    const form = new FormData()
    form.append('file', file, name)
    const xhr = new (globalThis as unknown as { XMLHttpRequest: new () => XhrLike }).XMLHttpRequest()
    const answer = new Promise<T>((resolve, reject) => {
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total)
      xhr.onerror = () => reject(new SessionError(CLIENT_ERRORS.network, 'Tessera cannot be reached: check your connection.'))
      xhr.onload = () => {
        const data = JSON.parse(xhr.responseText || 'null')
        if (xhr.status < 300) return resolve(data as T)
        const { code = 'INTERNAL', message = `The server answered ${xhr.status}.`, ...details } = data?.error ?? {}
        reject(new SessionError(code, message, xhr.status, details))
      }
    })
    xhr.open('POST', this.baseUrl + path)
    xhr.withCredentials = true
    xhr.setRequestHeader('x-csrf-token', this.csrfToken ?? '')
    xhr.setRequestHeader('x-tab-id', this.tabId)
    xhr.send(form)
    return answer
  }

  async refreshCsrf(): Promise<void> {
    this.csrfToken = (await this.send<{ csrfToken: string }>('GET', '/api/auth/csrf')).csrfToken
  }

  private async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { 'x-tab-id': this.tabId }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (method !== 'GET' && this.csrfToken) headers['x-csrf-token'] = this.csrfToken
    let res: Response
    try {
      res = await this.fetch(this.baseUrl + path, {
        method,
        headers,
        credentials: 'include',
        cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch {
      throw new SessionError(CLIENT_ERRORS.network, 'Tessera cannot be reached: check your connection.')
    }
    if (res.status === 204) return undefined as T
    const data = (await res.json().catch(() => null)) as { error?: { code: ErrorCode; message: string } } | null
    if (res.ok) return data as T
    const { code = 'INTERNAL', message = `The server answered ${res.status}.`, ...details } = data?.error ?? {}
    throw new SessionError(code, message, res.status, details)
  }
}
