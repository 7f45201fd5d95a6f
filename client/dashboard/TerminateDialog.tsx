// Force terminate, for one session or a selection: a reason is required (the audit keeps
// it, and the user is shown it unless a note for the user is given).
import * as Dialog from '@radix-ui/react-dialog'
import { type FormEvent, useState } from 'react'
import { toast } from 'sonner'
import type { SessionView } from 'tessera/client'
import { useSession } from 'tessera/react'

export function TerminateDialog({ sessions, onClose }: { sessions: SessionView[]; onClose: (done: boolean) => void }) {
  const { client } = useSession()
  const [reason, setReason] = useState('')
  const [note, setNote] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const who = sessions.length === 1 ? `${sessions[0]!.username}'s session` : `${sessions.length} sessions`

  const submit = async (event: FormEvent) => {
    event.preventDefault()
    if (!reason.trim()) {
      setError('Give a reason: it is recorded in the audit log.')
      return
    }
    setBusy(true)
    setError(null)
    const body = { reason: reason.trim(), ...(note.trim() ? { note: note.trim() } : {}) }
    const failures: string[] = []
    for (const s of sessions) {
      await client.request('DELETE', `/admin/sessions/${s.id}`, body).catch((err: Error & { code?: string }) => {
        // Already ended is what was wanted.
        if (err.code !== 'SESSION_ALREADY_ENDED') failures.push(`${s.username}: ${err.message}`)
      })
    }
    setBusy(false)
    if (failures.length > 0) {
      setError(failures.join(' '))
      return
    }
    toast.success(`Terminated ${who}`)
    onClose(true)
  }

  return (
    <Dialog.Root open onOpenChange={(open) => !open && onClose(false)}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className="dialog" data-testid="terminate-dialog">
          <Dialog.Title className="dialog-title">Terminate {who}?</Dialog.Title>
          <Dialog.Description className="dialog-text">
            Every tab of {sessions.length === 1 ? 'it' : 'them'} is signed out at once with “Session terminated by administrator”, and the locks held are released.
          </Dialog.Description>
          <form className="stack" onSubmit={submit} noValidate>
            <div className="field">
              <label htmlFor="terminate-reason">Reason (required)</label>
              <textarea
                id="terminate-reason"
                className="input textarea"
                maxLength={500}
                required
                aria-invalid={error ? true : undefined}
                aria-describedby={error ? 'terminate-error' : undefined}
                value={reason}
                onChange={(e) => setReason(e.target.value)}
              />
            </div>
            <div className="field">
              <label htmlFor="terminate-note">Note to the user (optional; else they see the reason)</label>
              <input id="terminate-note" className="input" maxLength={500} value={note} onChange={(e) => setNote(e.target.value)} />
            </div>
            {error && (
              <p id="terminate-error" className="notice notice-danger" role="alert">
                {error}
              </p>
            )}
            <div className="dialog-actions">
              <Dialog.Close asChild>
                <button type="button" className="button button-ghost" disabled={busy}>
                  Cancel
                </button>
              </Dialog.Close>
              <button type="submit" className="button button-danger" disabled={busy}>
                {busy ? 'Terminating…' : 'Terminate'}
              </button>
            </div>
          </form>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  )
}
