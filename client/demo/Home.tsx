// The signed-in page. With `cached`, the session is still being confirmed: the page shows
// what the browser last knew (user, platform) and waits for the server.
import type { CachedState } from 'tessera/client'
import { SessionResetModal, useSession } from 'tessera/react'
import { toast } from 'sonner'
import { ConnectionBadge } from '../ui/ConnectionBadge.js'
import { DevicesCard } from './DevicesCard.js'
import { PlatformCard } from './PlatformCard.js'
import { SegmentsCard } from './SegmentsCard.js'
import { SessionCard } from './SessionCard.js'
import { StillThereDialog } from './StillThereDialog.js'
import { UploadsCard } from './UploadsCard.js'

export function Home({ cached }: { cached?: CachedState }) {
  const { state } = useSession()
  const user = state?.user ?? cached?.user
  return (
    <div className="app" aria-busy={cached ? 'true' : undefined}>
      <header className="topbar">
        <div className="brand" aria-hidden="true">
          <span className="brand-mark" />
          Tessera
        </div>
        <div className="topbar-end">
          <ConnectionBadge />
          {user && (
            <span className="user-chip" data-testid="user">
              <span className="avatar" aria-hidden="true">
                {user.username.slice(0, 1).toUpperCase()}
              </span>
              {user.username}
              <span className="muted">· {user.role}</span>
            </span>
          )}
          <SessionResetModal
            onError={(error) => toast.error(error.message)}
            trigger={
              <button type="button" className="button button-secondary" disabled={!!cached}>
                Sign out
              </button>
            }
          />
        </div>
      </header>
      <main className="content">
        <h1 className="sr-only">Your session</h1>
        <div className="grid">
          <PlatformCard cached={cached} />
          <SessionCard />
          <DevicesCard />
          <SegmentsCard />
          {!cached && <UploadsCard />}
        </div>
      </main>
      <StillThereDialog />
    </div>
  )
}
