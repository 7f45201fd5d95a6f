import { useSession } from 'tessera/react'

const LABELS = { online: 'Live', reconnecting: 'Reconnecting…', offline: 'Offline' } as const

export function ConnectionBadge() {
  const { connection, phase } = useSession()
  const shown = phase === 'live' ? connection : 'reconnecting'
  return (
    <span className={`badge badge-dot badge-${shown}`} role="status" aria-live="polite" data-testid="connection" data-state={shown}>
      <span className="sr-only">Connection: </span>
      {LABELS[shown]}
    </span>
  )
}
