// Lockable segments of a shared document: one editor at a time, across every user and tab.
import { useCallback, useEffect, useState } from 'react'
import { toast } from 'sonner'
import type { LockOwner } from 'tessera/client'
import { useSession } from 'tessera/react'

const PREFIX = 'demo:segment:'
const SEGMENTS = [
  { id: 'introduction', name: 'Introduction' },
  { id: 'methods', name: 'Methods' },
  { id: 'results', name: 'Results' },
  { id: 'discussion', name: 'Discussion' },
]

export function SegmentsCard() {
  const { client, phase, state } = useSession()
  const [owners, setOwners] = useState<Record<string, LockOwner>>({})
  const [busy, setBusy] = useState<string | null>(null)
  const sessionId = state?.session.id

  const load = useCallback(() => {
    client.request<{ items: { resource: string; owner: LockOwner }[] }>('GET', `/api/locks?prefix=${encodeURIComponent(PREFIX)}`).then(
      (res) => setOwners(Object.fromEntries(res.items.map((l) => [l.resource, l.owner]))),
      () => {},
    )
  }, [client])

  useEffect(() => {
    if (phase !== 'live') return
    load()
    const offs = [
      client.on('lockAcquired', ({ resource, owner }) => setOwners((o) => ({ ...o, [resource]: owner }))),
      client.on('locksReleased', ({ resources }) =>
        setOwners((o) => Object.fromEntries(Object.entries(o).filter(([resource]) => !resources.includes(resource)))),
      ),
      // Lock broadcasts are not replayed: after a reconnect, ask again.
      client.on('connection', (c) => c === 'online' && load()),
    ]
    return () => {
      for (const off of offs) off()
    }
  }, [client, phase, load])

  const act = async (resource: string, take: boolean) => {
    setBusy(resource)
    try {
      if (take) {
        const lock = await client.request<{ owner: LockOwner }>('POST', '/api/locks', { resource })
        setOwners((o) => ({ ...o, [resource]: lock.owner }))
      } else {
        await client.request('DELETE', `/api/locks/${encodeURIComponent(resource)}`)
        setOwners(({ [resource]: _gone, ...rest }) => rest)
      }
    } catch (err) {
      toast.error((err as Error).message)
      load()
    } finally {
      setBusy(null)
    }
  }

  return (
    <section className="card" aria-labelledby="segments-title">
      <h2 id="segments-title" className="card-title">
        Document segments
      </h2>
      <p className="muted small">One editor per segment. A segment is freed when its editor's session ends.</p>
      <ul className="list">
        {SEGMENTS.map((segment) => {
          const resource = PREFIX + segment.id
          const owner = owners[resource]
          const mine = owner?.sessionId === sessionId
          const status = !owner ? 'Free' : mine ? 'You are editing' : `Locked by ${owner.username}${owner.userId === state?.user.id ? ' (another device)' : ''}`
          return (
            <li key={segment.id} className="list-row" data-testid={`segment-${segment.id}`}>
              <span className="stack-tight">
                <span>{segment.name}</span>
                <span className={`small ${owner && !mine ? 'text-warning' : 'muted'}`} data-testid="segment-status">
                  {status}
                </span>
              </span>
              <button
                type="button"
                className={`button button-small ${mine ? 'button-primary' : 'button-secondary'}`}
                disabled={busy === resource || (!!owner && !mine) || phase !== 'live'}
                onClick={() => void act(resource, !mine)}
              >
                {mine ? 'Done' : 'Edit'}
                <span className="sr-only"> {segment.name}</span>
              </button>
            </li>
          )
        })}
      </ul>
    </section>
  )
}
