// This session's details: its public id, times, status and tabs.
import { useSession, useSessionUUID } from 'tessera/react'
import { clock, relative, useNow } from '../ui/time.js'

export function SessionCard() {
  const { state } = useSession()
  const { uuid, status: uuidStatus } = useSessionUUID()
  const now = useNow()
  const s = state?.session
  return (
    <section className="card" aria-labelledby="session-title">
      <h2 id="session-title" className="card-title">
        This session
        {s && (
          <span className={`badge ${s.status === 'idle' ? 'badge-idle' : 'badge-online'}`} data-testid="session-status">
            {s.status === 'idle' ? 'Idle' : 'Active'}
          </span>
        )}
      </h2>
      {s && (
        <dl className="details">
          <dt>Session ID</dt>
          <dd className="mono" data-testid="session-id" title={uuidStatus === 'valid' ? 'Checked with the server' : undefined}>
            {uuid ?? s.id}
          </dd>
          <dt>Signed in</dt>
          <dd>{clock(s.createdAt)}</dd>
          <dt>Last activity</dt>
          <dd>{relative(s.lastActivity, now)}</dd>
          <dt>Idle sign-out</dt>
          <dd>{relative(s.idleExpiresAt, now)}</dd>
          <dt>Expires</dt>
          <dd>{clock(s.expiresAt)}</dd>
          <dt>Open tabs</dt>
          <dd data-testid="tabs">{s.tabs}</dd>
          <dt>State</dt>
          <dd className="muted">
            version {state.version} · event {state.seq}
          </dd>
        </dl>
      )}
    </section>
  )
}
