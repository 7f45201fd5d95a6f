// A debug panel for development builds: the SDK's counters and a few levers.
import { useEffect, useState } from 'react'
import { useSession } from './useSession.js'

export function SessionControls() {
  const { client } = useSession()
  const [metrics, setMetrics] = useState(() => client.metrics())
  const [open, setOpen] = useState(false)
  useEffect(() => {
    const timer = setInterval(() => setMetrics(client.metrics()), 1000)
    return () => clearInterval(timer)
  }, [client])
  return (
    <aside className="debug-panel" aria-label="Session debug panel">
      <button type="button" className="button button-ghost button-small" aria-expanded={open} onClick={() => setOpen(!open)}>
        {open ? 'Hide' : 'Show'} session debug
      </button>
      {open && (
        <div className="debug-body">
          <pre className="mono">{JSON.stringify({ tabId: client.tabId, ...metrics }, null, 2)}</pre>
          <div className="row">
            <button type="button" className="button button-small button-secondary" onClick={() => void client.sync()}>
              Sync now
            </button>
            <button
              type="button"
              className="button button-small button-secondary"
              onClick={() => {
                client.debug = !client.debug
              }}
            >
              Toggle console log
            </button>
          </div>
        </div>
      )}
    </aside>
  )
}
