// "Sign out": this device, or every device of the account, after a confirmation.
import * as Dialog from '@radix-ui/react-dialog'
import { type ReactNode, useState } from 'react'
import { useSession } from './useSession.js'

export function SessionResetModal({ trigger, onError }: { trigger: ReactNode; onError?: (error: Error) => void }) {
  const { client } = useSession()
  const [busy, setBusy] = useState(false)
  const run = (action: () => Promise<unknown>) => async () => {
    setBusy(true)
    try {
      await action()
    } catch (error) {
      onError?.(error as Error)
    } finally {
      setBusy(false)
    }
  }
  return (
    <Dialog.Root>
      <Dialog.Trigger asChild>{trigger}</Dialog.Trigger>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className="dialog">
          <Dialog.Title className="dialog-title">Sign out?</Dialog.Title>
          <Dialog.Description className="dialog-text">
            Signing out here ends this session in every tab of this browser. Signing out everywhere also ends your sessions on other devices.
          </Dialog.Description>
          <div className="dialog-actions">
            <Dialog.Close asChild>
              <button type="button" className="button button-ghost" disabled={busy}>
                Cancel
              </button>
            </Dialog.Close>
            <button type="button" className="button button-secondary" disabled={busy} onClick={run(() => client.logoutEverywhere())}>
              Sign out everywhere
            </button>
            <button type="button" className="button button-primary" disabled={busy} onClick={run(() => client.logout())}>
              Sign out this device
            </button>
          </div>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  )
}
