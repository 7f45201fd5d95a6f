// "Your devices": every live session of the user, each one signed out with a click.
import { useCallback, useEffect, useState } from 'react'
import { toast } from 'sonner'
import type { SessionView } from 'tessera/client'
import { SessionResetModal, useSession } from 'tessera/react'
import { relative, useNow } from '../ui/time.js'

type Device = SessionView & { current: boolean }

const describe = (d: Device) => {
  const what = [d.device.browser, d.device.os].filter(Boolean).join(' on ') || 'Unknown browser'
  return d.device.type && d.device.type !== 'desktop' ? `${what} (${d.device.type})` : what
}

export function DevicesCard() {
  const { client, phase, state } = useSession()
  const openTabs = state?.session.tabs
  const [devices, setDevices] = useState<Device[] | null>(null)
  const [busy, setBusy] = useState<string | null>(null)
  const now = useNow(10_000)

  const load = useCallback(() => {
    client.listSessions().then(
      (res) => setDevices(res.items),
      () => {},
    )
  }, [client])

  useEffect(() => {
    if (phase !== 'live') return
    load()
    const offNotice = client.on('notice', load)
    const offOnline = client.on('connection', (c) => c === 'online' && load())
    return () => {
      offNotice()
      offOnline()
    }
  }, [client, phase, load])

  // This device's own row shows its tab count: read again when it changes.
  useEffect(() => {
    if (phase === 'live' && openTabs !== undefined) load()
  }, [phase, openTabs, load])

  const signOut = async (device: Device) => {
    setBusy(device.id)
    try {
      await client.revokeSession(device.id)
      toast.success(`Signed out ${describe(device)}`)
      load()
    } catch (err) {
      toast.error((err as Error).message)
    } finally {
      setBusy(null)
    }
  }

  return (
    <section className="card" aria-labelledby="devices-title">
      <h2 id="devices-title" className="card-title">
        Your devices
      </h2>
      {devices === null ? (
        <p className="muted">Loading…</p>
      ) : (
        <ul className="list" data-testid="devices">
          {devices.map((d) => (
            <li key={d.id} className="list-row" data-session-id={d.id}>
              <span className="stack-tight">
                <span>
                  {describe(d)} {d.current && <span className="badge badge-online">This device</span>}
                </span>
                <span className="muted small">
                  {d.ip ?? 'unknown IP'} · active {relative(d.lastActivity, now)} · {d.tabs} {d.tabs === 1 ? 'tab' : 'tabs'}
                </span>
              </span>
              {!d.current && (
                <button type="button" className="button button-secondary button-small" disabled={busy === d.id} onClick={() => void signOut(d)}>
                  Sign out<span className="sr-only"> {describe(d)}</span>
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <SessionResetModal
        onError={(error) => toast.error(error.message)}
        trigger={
          <button type="button" className="button button-ghost button-small align-start">
            Sign out everywhere…
          </button>
        }
      />
    </section>
  )
}
