// The live list of sessions: the admin feed's snapshot (first 500), the rest read once over
// HTTP, then every delta. New and ended rows stay flagged for a moment so people see them.
import { useEffect, useState } from 'react'
import type { SessionView } from 'tessera/client'
import { useSession } from 'tessera/react'

export const FLAG_MS = 4000

export interface FeedRow {
  view: SessionView
  /** `new` after a login, `ended` (with its reason) until it leaves the table. */
  flag?: { kind: 'new' | 'ended'; at: number; reason?: string }
}

export interface Feed {
  rows: Map<string, FeedRow>
  /** `loading` until the first snapshot. */
  status: 'loading' | 'live' | 'reconnecting'
  total: number
}

type Page = { items: SessionView[]; nextCursor: string | null }

export function useSessionFeed(): Feed {
  const { client, connection } = useSession()
  const [feed, setFeed] = useState<Feed>({ rows: new Map(), status: 'loading', total: 0 })

  useEffect(() => {
    let generation = 0
    /** Ended since the last snapshot: the HTTP pages must not bring them back. */
    const gone = new Set<string>()

    /** The sessions beyond the snapshot's first 500, read once, then merged in one go. */
    const readTheRest = async (mine: number) => {
      const rest: SessionView[] = []
      let cursor: string | null = null
      do {
        const query = `limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
        const page: Page = await client.request<Page>('GET', `/admin/sessions?${query}`).catch(() => ({ items: [], nextCursor: null }))
        if (mine !== generation) return
        rest.push(...page.items)
        cursor = page.nextCursor
      } while (cursor)
      setFeed((f) => {
        const rows = new Map(f.rows)
        for (const view of rest) if (!rows.has(view.id) && !gone.has(view.id)) rows.set(view.id, { view })
        return { ...f, rows }
      })
    }

    const offAdmin = client.on('admin', (message) => {
      const now = Date.now()
      if (message.type === 'admin.snapshot') {
        const mine = ++generation
        gone.clear()
        setFeed({ rows: new Map(message.sessions.map((view) => [view.id, { view }])), status: 'live', total: message.total })
        if (message.total > message.sessions.length) void readTheRest(mine)
      } else if (message.type === 'admin.delta') {
        setFeed((f) => {
          const rows = new Map(f.rows)
          let total = f.total
          for (const view of message.upserted) {
            const known = rows.get(view.id)
            if (!known) total++
            rows.set(view.id, { view, flag: known ? known.flag : { kind: 'new', at: now } })
          }
          for (const { id, reason } of message.removed) {
            gone.add(id)
            const known = rows.get(id)
            if (known && known.flag?.kind !== 'ended') {
              rows.set(id, { view: known.view, flag: { kind: 'ended', at: now, reason } })
              total--
            }
          }
          return { ...f, rows, total }
        })
      }
    })
    const subscribe = () => client.send({ type: 'admin.subscribe', filter: { limit: 500 } })
    const offConnection = client.on('connection', (c) => {
      if (c === 'online') subscribe()
      else setFeed((f) => ({ ...f, status: f.status === 'loading' ? 'loading' : 'reconnecting' }))
    })
    if (client.connection === 'online') subscribe()

    // Flags fade: new rows become ordinary, ended rows leave.
    const timer = setInterval(() => {
      const cutoff = Date.now() - FLAG_MS
      setFeed((f) => {
        let changed = false
        const rows = new Map(f.rows)
        for (const [id, row] of rows) {
          if (!row.flag || row.flag.at > cutoff) continue
          changed = true
          if (row.flag.kind === 'ended') rows.delete(id)
          else rows.set(id, { view: row.view })
        }
        return changed ? { ...f, rows } : f
      })
    }, 1000)

    return () => {
      generation++
      offAdmin()
      offConnection()
      clearInterval(timer)
      client.send({ type: 'admin.unsubscribe' })
    }
  }, [client])

  return connection === 'online' || feed.status === 'loading' ? feed : { ...feed, status: 'reconnecting' }
}
