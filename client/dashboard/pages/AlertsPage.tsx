// Alerts: newest first, live; each one acknowledged with a click.
import { useEffect, useState } from 'react'
import { toast } from 'sonner'
import { clock } from '../../ui/time.js'
import type { Alerts } from '../alerts.js'

export function AlertsPage({ alerts }: { alerts: Alerts }) {
  const [showAll, setShowAll] = useState(false)
  useEffect(() => {
    if (showAll) void alerts.loadAll().catch((err: Error) => toast.error(err.message))
  }, [showAll, alerts.loadAll])
  const shown = showAll ? alerts.items : alerts.items.filter((a) => !a.acknowledged)
  return (
    <section className="page" aria-labelledby="alerts-title">
      <div className="page-head">
        <h1 id="alerts-title" className="page-title">
          Alerts
        </h1>
        <label className="check">
          <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} />
          Show acknowledged alerts too
        </label>
      </div>
      {shown.length === 0 ? (
        <p className="muted">{showAll ? 'No alerts yet.' : 'Nothing to look at: every alert is acknowledged.'}</p>
      ) : (
        <ul className="alert-list" data-testid="alerts">
          {shown.map((a) => (
            <li key={a.id} className={`card alert ${a.acknowledged ? 'alert-done' : ''}`} data-alert-id={a.id} data-type={a.type}>
              <div className="stack-tight">
                <span className="row">
                  <span className={`badge ${a.acknowledged ? '' : 'badge-offline'}`}>{a.type.replaceAll('_', ' ')}</span>
                  <time className="muted small" dateTime={a.createdAt}>
                    {clock(a.createdAt)}
                  </time>
                </span>
                <span>{a.message}</span>
              </div>
              {a.acknowledged ? (
                <span className="muted small">Acknowledged {a.acknowledgedAt ? clock(a.acknowledgedAt) : ''}</span>
              ) : (
                <button type="button" className="button button-secondary button-small" onClick={() => void alerts.acknowledge(a.id).catch((err: Error) => toast.error(err.message))}>
                  Acknowledge<span className="sr-only"> {a.message}</span>
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}
