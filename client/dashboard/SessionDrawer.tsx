// A session's detail and its timeline: every audited event in order, with what the user
// was viewing at that point (the session replay).
import * as Dialog from '@radix-ui/react-dialog'
import { useEffect, useState } from 'react'
import type { SessionView } from 'tessera/client'
import { useSession } from 'tessera/react'
import { clock } from '../ui/time.js'
import { navigate } from './router.js'

interface Detail extends Omit<SessionView, 'status'> {
  status: 'active' | 'idle' | 'ended'
  endedAt: string | null
  endReason: string | null
  endedBy: number | null
  endNote: string | null
  fingerprint: string | null
  flags: string[]
  expiresAt: string
}

interface TimelineItem {
  at: string
  type: string
  data: Record<string, unknown>
}

interface AuditEvent extends TimelineItem {
  actorUserId: number | null
}

/** One line of what an event says, for people. */
function describe(item: TimelineItem, actors: Map<string, string>): string {
  const d = item.data
  switch (item.type) {
    case 'session.login':
      return `Signed in from ${d.ip ?? 'an unknown IP'}${Array.isArray(d.flags) && d.flags.length ? ` (${d.flags.join(', ')})` : ''}`
    case 'session.view':
      return `Opened ${d.view}`
    case 'platform.switched':
      return `Switched platform${d.to ? ` to ${(d.to as { name?: string }).name ?? d.to}` : ''}`
    case 'session.idle':
      return 'Went idle'
    case 'session.active':
      return 'Active again'
    case 'lock.acquired':
      return `Locked ${d.resource}`
    case 'lock.released':
      return `Released ${d.resource}`
    case 'locks.released':
      return `Locks released: ${(d.resources as string[] | undefined)?.join(', ')}`
    case 'session.ended': {
      const by = actors.get(`${item.type}@${item.at}`)
      return `Ended: ${d.reason}${by ? ` by ${by}` : ''}${d.note ? ` (“${d.note}”)` : ''}`
    }
    default:
      return item.type
  }
}

export function SessionDrawer({ id, onTerminate }: { id: string; onTerminate: (v: SessionView) => void }) {
  const { client } = useSession()
  const [detail, setDetail] = useState<Detail | null>(null)
  const [timeline, setTimeline] = useState<TimelineItem[]>([])
  const [actors, setActors] = useState<Map<string, string>>(new Map())
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let cancelled = false
    const load = async () => {
      try {
        const [d, t, audit, users] = await Promise.all([
          client.request<Detail>('GET', `/admin/sessions/${id}`),
          client.request<{ items: TimelineItem[] }>('GET', `/admin/sessions/${id}/timeline`),
          client.request<{ items: AuditEvent[] }>('GET', `/admin/audit?session=${id}&type=session.ended`),
          client.request<{ items: { id: number; username: string }[] }>('GET', '/admin/users?limit=500'),
        ])
        if (cancelled) return
        const names = new Map(users.items.map((u) => [u.id, u.username]))
        setActors(new Map(audit.items.filter((e) => e.actorUserId !== null).map((e) => [`${e.type}@${e.at}`, names.get(e.actorUserId!) ?? `user #${e.actorUserId}`])))
        setDetail(d)
        setTimeline(t.items)
      } catch (err) {
        if (!cancelled) setError((err as Error).message)
      }
    }
    void load()
    const refresh = client.on('admin', (m) => {
      if (m.type === 'admin.delta' && (m.upserted.some((v) => v.id === id) || m.removed.some((r) => r.id === id))) void load()
    })
    return () => {
      cancelled = true
      refresh()
    }
  }, [client, id])

  let viewing: string | null = null
  const rows = timeline.map((item) => {
    if (item.type === 'session.view' && typeof item.data.view === 'string') viewing = item.data.view
    return { ...item, viewing }
  })

  return (
    <Dialog.Root open onOpenChange={(open) => !open && navigate('#/sessions')}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content className="drawer" data-testid="session-drawer" aria-describedby={undefined}>
          <div className="drawer-head">
            <Dialog.Title className="dialog-title">{detail ? `${detail.username}'s session` : 'Session'}</Dialog.Title>
            <Dialog.Close asChild>
              <button type="button" className="button button-ghost button-small">
                Close
              </button>
            </Dialog.Close>
          </div>
          {error && <p className="notice notice-danger">{error}</p>}
          {detail && (
            <>
              <dl className="details">
                <dt>Session</dt>
                <dd className="mono">{detail.id}</dd>
                <dt>Status</dt>
                <dd>
                  <span className={`badge ${detail.status === 'ended' ? 'badge-offline' : detail.status === 'idle' ? 'badge-idle' : 'badge-online'}`}>{detail.status}</span>
                  {detail.endReason && <span className="muted"> · {detail.endReason}</span>}
                </dd>
                <dt>Role</dt>
                <dd>{detail.role}</dd>
                <dt>Signed in</dt>
                <dd>{clock(detail.loginAt)}</dd>
                <dt>Last activity</dt>
                <dd>{clock(detail.lastActivity)}</dd>
                {detail.endedAt && (
                  <>
                    <dt>Ended</dt>
                    <dd>{clock(detail.endedAt)}</dd>
                  </>
                )}
                <dt>Device</dt>
                <dd>{[detail.device.browser, detail.device.os, detail.device.type].filter(Boolean).join(' · ')}</dd>
                <dt>IP</dt>
                <dd className="mono">{detail.ip ?? '—'}</dd>
                <dt>Platform</dt>
                <dd>{detail.platform?.name ?? '—'}</dd>
                <dt>Flags</dt>
                <dd>{detail.flags.length ? detail.flags.map((f) => <span key={f} className="badge badge-idle">{f}</span>) : '—'}</dd>
              </dl>
              {detail.status !== 'ended' && (
                <button type="button" className="button button-danger align-start" onClick={() => onTerminate({ ...detail, status: detail.status } as SessionView)}>
                  Terminate this session
                </button>
              )}
            </>
          )}
          <h3 className="card-title">Timeline</h3>
          <ol className="timeline" data-testid="timeline">
            {rows.map((item, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: the timeline only grows at its end, in order
              <li key={`${item.at}-${i}`} data-type={item.type}>
                <time dateTime={item.at}>{new Date(item.at).toLocaleTimeString()}</time>
                <span>{describe(item, actors)}</span>
                <span className="muted small">{item.viewing ? `viewing ${item.viewing}` : ''}</span>
              </li>
            ))}
          </ol>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  )
}
