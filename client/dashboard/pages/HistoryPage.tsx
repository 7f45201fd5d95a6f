// Login history: every attempt with its result, reason and flags; filtered by user, date
// range and result; a user's row links to their sessions and unlocks their account.
import { type FormEvent, useCallback, useEffect, useState } from 'react'
import { toast } from 'sonner'
import { useSession } from 'tessera/react'
import { clock } from '../../ui/time.js'
import { href, type Route } from '../router.js'

interface Attempt {
  id: number
  userId: number | null
  username: string
  ip: string | null
  userAgent: string | null
  success: boolean
  reason: string
  method: string
  at: string
  flags: string[]
}

interface Query {
  user: string
  from: string
  to: string
  success: string
}

/** A datetime-local value (the viewer's time) as an ISO instant. */
const iso = (local: string) => (local ? new Date(local).toISOString() : '')

function queryString(q: Query, cursor?: string | null): string {
  const params = new URLSearchParams({ limit: '100' })
  if (q.user.trim()) params.set('user', q.user.trim())
  if (q.from) params.set('from', iso(q.from))
  if (q.to) params.set('to', iso(q.to))
  if (q.success) params.set('success', q.success)
  if (cursor) params.set('cursor', cursor)
  return params.toString()
}

export function HistoryPage({ route }: { route: Route }) {
  const { client } = useSession()
  const [draft, setDraft] = useState<Query>(() => ({ user: route.params.get('user') ?? '', from: '', to: '', success: '' }))
  const [query, setQuery] = useState(draft)
  const [items, setItems] = useState<Attempt[] | null>(null)
  const [next, setNext] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)

  const load = useCallback(
    async (cursor?: string | null) => {
      setError(null)
      try {
        const page = await client.request<{ items: Attempt[]; nextCursor: string | null }>('GET', `/admin/sessions/history?${queryString(query, cursor)}`)
        setItems((current) => (cursor ? [...(current ?? []), ...page.items] : page.items))
        setNext(page.nextCursor)
      } catch (err) {
        setError((err as Error).message)
      }
    },
    [client, query],
  )
  useEffect(() => void load(), [load])

  const unlock = async (a: Attempt) => {
    try {
      await client.request('POST', `/admin/users/${a.userId}/unlock`)
      toast.success(`${a.username} can sign in again`)
    } catch (err) {
      toast.error((err as Error).message)
    }
  }
  const submit = (event: FormEvent) => {
    event.preventDefault()
    setQuery({ ...draft })
  }
  const set = (key: keyof Query) => (value: string) => setDraft((d) => ({ ...d, [key]: value }))

  return (
    <section className="page" aria-labelledby="history-title">
      <div className="page-head">
        <h1 id="history-title" className="page-title">
          Login history
        </h1>
      </div>
      <form className="filters" onSubmit={submit}>
        <div className="field">
          <label htmlFor="history-user">User (name or id)</label>
          <input id="history-user" className="input" value={draft.user} onChange={(e) => set('user')(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="history-from">From</label>
          <input id="history-from" className="input" type="datetime-local" value={draft.from} onChange={(e) => set('from')(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="history-to">To</label>
          <input id="history-to" className="input" type="datetime-local" value={draft.to} onChange={(e) => set('to')(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="history-result">Result</label>
          <select id="history-result" className="input" value={draft.success} onChange={(e) => set('success')(e.target.value)}>
            <option value="">all</option>
            <option value="true">succeeded</option>
            <option value="false">failed</option>
          </select>
        </div>
        <button type="submit" className="button button-primary">
          Show
        </button>
      </form>
      {error && (
        <p className="notice notice-danger" role="alert">
          {error}
        </p>
      )}
      <div className="table-scroll table-auto">
        <table className="table" data-testid="history-table">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">User</th>
              <th scope="col">Result</th>
              <th scope="col">IP</th>
              <th scope="col">Browser</th>
              <th scope="col">Flags</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {(items ?? []).map((a) => (
              <tr key={a.id} data-attempt-id={a.id} data-success={a.success}>
                <td>
                  <time dateTime={a.at}>{clock(a.at)}</time>
                </td>
                <td>{a.userId !== null ? <a href={href('sessions', null, { user: a.username })}>{a.username}</a> : <span>{a.username}</span>}</td>
                <td>
                  <span className={`badge ${a.success ? 'badge-online' : 'badge-offline'}`}>{a.success ? 'signed in' : a.reason.replaceAll('_', ' ')}</span>
                </td>
                <td className="mono">{a.ip ?? '—'}</td>
                <td className="truncate" title={a.userAgent ?? undefined}>
                  {a.userAgent ?? '—'}
                </td>
                <td>
                  {a.flags.map((f) => (
                    <span key={f} className="badge badge-idle" data-flag={f}>
                      {f.replaceAll('_', ' ')}
                    </span>
                  ))}
                </td>
                <td>
                  {a.userId !== null && !a.success && (
                    <button type="button" className="button button-small button-secondary" onClick={() => void unlock(a)}>
                      Unlock<span className="sr-only"> {a.username}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {items?.length === 0 && <p className="empty muted">No sign-in attempt matches.</p>}
      </div>
      {next && (
        <button type="button" className="button button-secondary align-start" onClick={() => void load(next)}>
          Show more
        </button>
      )}
    </section>
  )
}
