// Session-scoped PDF uploads: a picker, a progress bar with its percentage, this session's
// files, and the server's own words when it refuses one.
import { type ChangeEvent, useCallback, useEffect, useId, useRef, useState } from 'react'
import { toast } from 'sonner'
import type { Upload } from 'tessera/client'
import { useSession } from 'tessera/react'
import { clock } from '../ui/time.js'

const size = (bytes: number) => (bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`)

export function UploadsCard() {
  const { client, phase } = useSession()
  const [files, setFiles] = useState<Upload[]>([])
  const [progress, setProgress] = useState<{ name: string; fraction: number } | null>(null)
  const input = useRef<HTMLInputElement>(null)
  const labelId = useId()

  const load = useCallback(() => {
    client.listUploads().then(
      (res) => setFiles(res.items),
      () => {},
    )
  }, [client])
  useEffect(() => {
    if (phase === 'live') load()
  }, [phase, load])

  const send = async (event: ChangeEvent<HTMLInputElement>) => {
    const file = event.target.files?.[0]
    if (!file) return
    setProgress({ name: file.name, fraction: 0 })
    try {
      const stored = await client.uploadFile(file, file.name, (fraction) => setProgress({ name: file.name, fraction }))
      setFiles((list) => [...list, stored])
      toast.success(`Uploaded ${stored.name}`)
    } catch (err) {
      toast.error((err as Error).message)
    } finally {
      setProgress(null)
      if (input.current) input.current.value = ''
    }
  }

  return (
    <section className="card" aria-labelledby="uploads-title">
      <h2 id="uploads-title" className="card-title">
        Files of this session
      </h2>
      <p className="muted small">PDF files up to 5 MB. They belong to this session and are removed some days after it ends.</p>
      <div className="row">
        <input
          id="upload-input"
          ref={input}
          className="sr-only file-input"
          type="file"
          accept="application/pdf,.pdf"
          disabled={!!progress || phase !== 'live'}
          onChange={(e) => void send(e)}
        />
        <label className="button button-secondary" htmlFor="upload-input">
          Choose a PDF…
        </label>
      </div>
      {progress && (
        <div className="stack-tight" data-testid="upload-progress">
          <span className="small" id={labelId}>
            Uploading {progress.name}: {Math.round(progress.fraction * 100)} %
          </span>
          <progress className="progress" max={100} value={Math.round(progress.fraction * 100)} aria-labelledby={labelId} />
        </div>
      )}
      {files.length > 0 ? (
        <ul className="list" data-testid="uploads">
          {files.map((f) => (
            <li key={f.id} className="list-row">
              <a href={`/api/session/uploads/${f.id}`} download={f.name}>
                {f.name}
              </a>
              <span className="muted small">
                {size(f.size)} · {clock(f.uploadedAt)}
              </span>
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted small">No files yet.</p>
      )}
    </section>
  )
}
