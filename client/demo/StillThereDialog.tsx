// "Still there?": shown in every tab when the server warns of idle expiry, with a countdown;
// "Stay signed in" in any tab keeps the session in all of them.
import * as Dialog from '@radix-ui/react-dialog'
import { useSession } from 'tessera/react'
import { countdown, useNow } from '../ui/time.js'

export function StillThereDialog() {
  const { client, idleWarning } = useSession()
  const now = useNow(500)
  const left = idleWarning ? (Date.parse(idleWarning.expiresAt) - now) / 1000 : 0
  return (
    <Dialog.Root open={!!idleWarning}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className="dialog" data-testid="still-there" onEscapeKeyDown={() => client.stayActive()} aria-describedby="still-there-text">
          <Dialog.Title className="dialog-title">Still there?</Dialog.Title>
          <p id="still-there-text" className="dialog-text">
            You have been inactive for a while. For your security you will be signed out in{' '}
            <strong className="countdown" role="timer">
              {countdown(left)}
            </strong>
            .
          </p>
          <div className="dialog-actions">
            <button type="button" className="button button-ghost" onClick={() => void client.logout().catch(() => {})}>
              Sign out
            </button>
            <button type="button" className="button button-primary" onClick={() => client.stayActive()}>
              Stay signed in
            </button>
          </div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  )
}
