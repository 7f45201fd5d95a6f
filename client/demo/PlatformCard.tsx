// The active platform and the switcher: one switch at a time in the whole browser, shown
// as pending in every tab until the server confirms it.
import { useEffect } from 'react'
import type { CachedState, Platform } from 'tessera/client'
import { useSession } from 'tessera/react'

const host = (url: string) => {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

export function PlatformCard({ cached }: { cached?: CachedState }) {
  const { client, state, platforms, pendingPlatform, phase } = useSession()
  useEffect(() => {
    if (phase === 'live') void client.listPlatforms().catch(() => {})
  }, [client, phase])

  const active: Platform | null = state ? state.platform : (cached?.platform ?? null)
  const pending = pendingPlatform !== undefined
  const choose = (id: number) =>
    client.switchPlatform(id).catch(() => {
      // Reported by the switchFailed toast in every tab; SWITCH_IN_PROGRESS needs nothing.
    })

  return (
    <section className="card" aria-labelledby="platform-title">
      <h2 id="platform-title" className="card-title">
        Active platform
      </h2>
      <div className="platform-current">
        <span className="platform-name" data-testid="active-platform" data-platform-id={active?.id ?? ''} data-pending={pending}>
          {active ? active.name : 'None'}
        </span>
        {active && <span className="muted">{host(active.instanceUrl)}</span>}
        {pending && (
          <span className="badge badge-reconnecting" role="status" data-testid="switch-pending">
            Switching…
          </span>
        )}
      </div>
      {platforms.length > 0 ? (
        <ul className="list" aria-label="Your platforms">
          {platforms.map((p) => {
            const current = active?.id === p.id
            return (
              <li key={p.id} className="list-row">
                <span>
                  {p.name} <span className="muted">· {p.type}</span>
                </span>
                <button
                  type="button"
                  className={`button button-small ${current ? 'button-ghost' : 'button-secondary'}`}
                  aria-pressed={current}
                  disabled={current || pending || !!cached}
                  data-testid={`switch-${p.id}`}
                  onClick={() => void choose(p.id)}
                >
                  {current ? 'Active' : `Use ${p.name}`}
                </button>
              </li>
            )
          })}
        </ul>
      ) : (
        <p className="muted">{phase === 'live' ? 'No platform connections yet.' : ' '}</p>
      )}
    </section>
  )
}
