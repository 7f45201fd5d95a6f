// Active sessions: the live table (sort and filter as GET /admin/sessions does them, by the
// shared session-order module), selection and force terminate, and a session's detail.
import { type ColumnDef, flexRender, getCoreRowModel, type RowSelectionState, type SortingState, useReactTable } from '@tanstack/react-table'
import { useVirtualizer } from '@tanstack/react-virtual'
import { useMemo, useRef, useState } from 'react'
import type { SessionView } from 'tessera/client'
import { matchesFilter, type SessionFilter, sortKey, sortViews } from '../../../src/admin/session-order.js'
import { relative, useNow } from '../../ui/time.js'
import type { Feed, FeedRow } from '../feed.js'
import { navigate, type Route } from '../router.js'
import { SessionDrawer } from '../SessionDrawer.js'
import { TerminateDialog } from '../TerminateDialog.js'

/** Filters: the server's (user, role, status, ip, q) and the table's own, by contained text. */
interface Filters {
  q: string
  user: string
  role: string
  status: string
  ip: string
  currentView: string
  device: string
  platform: string
  minTabs: string
  loginWithin: string
  activeWithin: string
}

const NO_FILTERS: Filters = { q: '', user: '', role: '', status: '', ip: '', currentView: '', device: '', platform: '', minTabs: '', loginWithin: '', activeWithin: '' }
const WITHIN = [
  ['', 'any'],
  ['60', '≤ 1 min'],
  ['900', '≤ 15 min'],
  ['3600', '≤ 1 h'],
  ['86400', '≤ 1 day'],
] as const

/** "Firefox 140 · Linux", with the device type when it is not a desktop. */
export const deviceText = (v: SessionView) => [v.device.browser, v.device.os, v.device.type === 'desktop' ? null : v.device.type].filter(Boolean).join(' · ')

/** The filter GET /admin/sessions would be given for these filters. */
export function serverFilter(f: Filters): SessionFilter {
  const out: SessionFilter = {}
  if (f.q.trim()) out.q = f.q.trim()
  if (f.user.trim()) out.user = f.user.trim()
  if (f.role) out.role = f.role
  if (f.status === 'active' || f.status === 'idle') out.status = f.status
  if (f.ip.trim()) out.ip = f.ip.trim()
  return out
}

function matchesTable(v: SessionView, f: Filters, now: number): boolean {
  const contains = (value: string | null | undefined, wanted: string) => !wanted.trim() || (value ?? '').toLowerCase().includes(wanted.trim().toLowerCase())
  const within = (iso: string, seconds: string) => !seconds || now - Date.parse(iso) <= Number(seconds) * 1000
  return (
    contains(v.currentView, f.currentView) &&
    contains(deviceText(v), f.device) &&
    contains(v.platform?.name, f.platform) &&
    (!f.minTabs || v.tabs >= Number(f.minTabs)) &&
    within(v.loginAt, f.loginWithin) &&
    within(v.lastActivity, f.activeWithin)
  )
}

const COLUMNS: { id: string; label: string }[] = [
  { id: 'username', label: 'User' },
  { id: 'role', label: 'Role' },
  { id: 'loginAt', label: 'Signed in' },
  { id: 'lastActivity', label: 'Last activity' },
  { id: 'currentView', label: 'Viewing' },
  { id: 'ip', label: 'IP' },
  { id: 'device', label: 'Device' },
  { id: 'tabs', label: 'Tabs' },
  { id: 'platform', label: 'Platform' },
  { id: 'status', label: 'Status' },
]

const ROW_HEIGHT = 44

export function SessionsPage({ feed, route }: { feed: Feed; route: Route }) {
  const now = useNow(1000)
  const [filters, setFilters] = useState<Filters>(() => ({ ...NO_FILTERS, user: route.params.get('user') ?? '' }))
  const [sorting, setSorting] = useState<SortingState>([])
  const [selection, setSelection] = useState<RowSelectionState>({})
  const [terminating, setTerminating] = useState<SessionView[] | null>(null)
  const scrollRef = useRef<HTMLElement>(null)

  const sortColumn = sorting[0]?.id
  const sortOrder = sorting[0] ? (sorting[0].desc ? ('desc' as const) : ('asc' as const)) : undefined
  // Time filters move with the clock only every 10 s, so the list is not redone every second.
  const coarseNow = Math.floor(now / 10_000) * 10_000
  const views = useMemo(() => {
    const server = serverFilter(filters)
    const shown = [...feed.rows.values()].map((r) => r.view).filter((v) => matchesFilter(v, server) && matchesTable(v, filters, coarseNow))
    return sortViews(shown, { sort: sortColumn, order: sortOrder })
  }, [feed.rows, filters, sortColumn, sortOrder, coarseNow])

  const columns = useMemo<ColumnDef<SessionView>[]>(
    () => [
      {
        id: 'select',
        enableSorting: false,
        header: ({ table }) => (
          <input
            type="checkbox"
            aria-label="Select every session shown"
            checked={table.getIsAllRowsSelected()}
            onChange={table.getToggleAllRowsSelectedHandler()}
          />
        ),
        cell: ({ row }) => (
          <input type="checkbox" aria-label={`Select ${row.original.username}'s session`} checked={row.getIsSelected()} onChange={row.getToggleSelectedHandler()} />
        ),
      },
      ...COLUMNS.map(
        (c): ColumnDef<SessionView> => ({
          id: c.id,
          // The value sorted by (the sort itself is session-order's, as the server's).
          accessorFn: (v) => sortKey(v, c.id),
          header: c.label,
          enableSorting: true,
          sortDescFirst: false,
        }),
      ),
      { id: 'actions', enableSorting: false, header: () => <span className="sr-only">Actions</span> },
    ],
    [],
  )

  const table = useReactTable({
    data: views,
    columns,
    getRowId: (v) => v.id,
    getCoreRowModel: getCoreRowModel(),
    manualSorting: true,
    manualFiltering: true,
    enableMultiSort: false,
    enableRowSelection: true,
    state: { sorting, rowSelection: selection },
    onSortingChange: setSorting,
    onRowSelectionChange: setSelection,
  })
  const rows = table.getRowModel().rows
  const virtualizer = useVirtualizer({ count: rows.length, getScrollElement: () => scrollRef.current, estimateSize: () => ROW_HEIGHT, overscan: 12 })
  const items = virtualizer.getVirtualItems()
  const padTop = items[0]?.start ?? 0
  const padBottom = items.length > 0 ? virtualizer.getTotalSize() - items[items.length - 1]!.end : 0
  const selected = views.filter((v) => selection[v.id])
  const set = (key: keyof Filters) => (value: string) => setFilters((f) => ({ ...f, [key]: value }))

  const cell = (v: SessionView, id: string, row: FeedRow | undefined) => {
    switch (id) {
      case 'username':
        return (
          <a href={`#/sessions/${v.id}`} className="strong-link">
            {v.username}
          </a>
        )
      case 'loginAt':
        return <time dateTime={v.loginAt}>{relative(v.loginAt, now)}</time>
      case 'lastActivity':
        return <time dateTime={v.lastActivity}>{relative(v.lastActivity, now)}</time>
      case 'currentView':
        return <span className="mono">{v.currentView ?? '—'}</span>
      case 'ip':
        return <span className="mono">{v.ip ?? '—'}</span>
      case 'device':
        return deviceText(v) || '—'
      case 'platform':
        return v.platform?.name ?? '—'
      case 'status':
        if (row?.flag?.kind === 'ended') return <span className="badge badge-offline">Ended</span>
        return (
          <span className={`badge ${v.status === 'idle' ? 'badge-idle' : 'badge-online'}`}>
            {v.status === 'idle' ? 'Idle' : 'Active'}
            {row?.flag?.kind === 'new' && ' · new'}
          </span>
        )
      case 'actions':
        return (
          <button type="button" className="button button-small button-secondary" disabled={row?.flag?.kind === 'ended'} onClick={() => setTerminating([v])}>
            Terminate<span className="sr-only"> {v.username}'s session</span>
          </button>
        )
      default:
        return String(v[id as keyof SessionView] ?? '—')
    }
  }

  return (
    <section className="page" aria-labelledby="sessions-title">
      <div className="page-head">
        <h1 id="sessions-title" className="page-title">
          Active sessions
        </h1>
        <div className="row">
          <label className="sr-only" htmlFor="session-search">
            Search username, IP, view or browser
          </label>
          <input
            id="session-search"
            className="input search"
            type="search"
            placeholder="Search username, IP, view, browser"
            value={filters.q}
            onChange={(e) => set('q')(e.target.value)}
          />
          <button type="button" className="button button-ghost" onClick={() => setFilters(NO_FILTERS)}>
            Clear filters
          </button>
          <button type="button" className="button button-danger" disabled={selected.length === 0} onClick={() => setTerminating(selected)}>
            Terminate selected{selected.length > 0 ? ` (${selected.length})` : ''}
          </button>
        </div>
      </div>
      <p className="muted small" role="status" data-testid="session-count">
        {views.length.toLocaleString()} shown of {feed.total.toLocaleString()} active sessions
      </p>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling box must take focus so a keyboard can scroll it (axe: scrollable-region-focusable) */}
      <section className="table-scroll" ref={scrollRef} tabIndex={0} aria-label="Active sessions table">
        <table className="table" data-testid="sessions-table">
          <thead>
            {table.getHeaderGroups().map((group) => (
              <tr key={group.id}>
                {group.headers.map((header) => {
                  const sorted = header.column.getIsSorted()
                  return (
                    <th key={header.id} scope="col" aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : undefined} data-column={header.column.id}>
                      {header.column.getCanSort() ? (
                        <button type="button" className="sort" onClick={header.column.getToggleSortingHandler()}>
                          {flexRender(header.column.columnDef.header, header.getContext())}
                          <span aria-hidden="true" className="sort-mark">
                            {sorted === 'asc' ? '▲' : sorted === 'desc' ? '▼' : '↕'}
                          </span>
                        </button>
                      ) : (
                        flexRender(header.column.columnDef.header, header.getContext())
                      )}
                    </th>
                  )
                })}
              </tr>
            ))}
            <tr className="filter-row">
              <td />
              <td>
                <input className="input input-small" aria-label="Filter by user (name or id)" value={filters.user} onChange={(e) => set('user')(e.target.value)} />
              </td>
              <td>
                <select className="input input-small" aria-label="Filter by role" value={filters.role} onChange={(e) => set('role')(e.target.value)}>
                  <option value="">any</option>
                  <option value="admin">admin</option>
                  <option value="reviewer">reviewer</option>
                  <option value="user">user</option>
                </select>
              </td>
              <td>
                <select className="input input-small" aria-label="Filter by sign-in time" value={filters.loginWithin} onChange={(e) => set('loginWithin')(e.target.value)}>
                  {WITHIN.map(([value, label]) => (
                    <option key={value} value={value}>
                      {label}
                    </option>
                  ))}
                </select>
              </td>
              <td>
                <select className="input input-small" aria-label="Filter by last activity" value={filters.activeWithin} onChange={(e) => set('activeWithin')(e.target.value)}>
                  {WITHIN.map(([value, label]) => (
                    <option key={value} value={value}>
                      {label}
                    </option>
                  ))}
                </select>
              </td>
              <td>
                <input className="input input-small" aria-label="Filter by view" value={filters.currentView} onChange={(e) => set('currentView')(e.target.value)} />
              </td>
              <td>
                <input className="input input-small" aria-label="Filter by IP" value={filters.ip} onChange={(e) => set('ip')(e.target.value)} />
              </td>
              <td>
                <input className="input input-small" aria-label="Filter by device" value={filters.device} onChange={(e) => set('device')(e.target.value)} />
              </td>
              <td>
                <input className="input input-small" type="number" min={0} aria-label="At least this many tabs" value={filters.minTabs} onChange={(e) => set('minTabs')(e.target.value)} />
              </td>
              <td>
                <input className="input input-small" aria-label="Filter by platform" value={filters.platform} onChange={(e) => set('platform')(e.target.value)} />
              </td>
              <td>
                <select className="input input-small" aria-label="Filter by status" value={filters.status} onChange={(e) => set('status')(e.target.value)}>
                  <option value="">any</option>
                  <option value="active">active</option>
                  <option value="idle">idle</option>
                </select>
              </td>
              <td />
            </tr>
          </thead>
          <tbody>
            {padTop > 0 && (
              <tr className="spacer">
                <td colSpan={COLUMNS.length + 2} style={{ height: padTop }} />
              </tr>
            )}
            {items.map((item) => {
              const row = rows[item.index]!
              const v = row.original
              const feedRow = feed.rows.get(v.id)
              const state = feedRow?.flag?.kind ?? (v.status === 'idle' ? 'idle' : 'live')
              return (
                <tr
                  key={row.id}
                  data-session-id={v.id}
                  data-state={state}
                  className={`row-${state}${row.getIsSelected() ? ' row-selected' : ''}`}
                  onClick={(e) => {
                    if ((e.target as HTMLElement).closest('a, button, input')) return
                    navigate(`#/sessions/${v.id}`)
                  }}
                >
                  {row.getVisibleCells().map((c) => (
                    <td key={c.id} data-column={c.column.id}>
                      {c.column.id === 'select' ? flexRender(c.column.columnDef.cell, c.getContext()) : cell(v, c.column.id, feedRow)}
                    </td>
                  ))}
                </tr>
              )
            })}
            {padBottom > 0 && (
              <tr className="spacer">
                <td colSpan={COLUMNS.length + 2} style={{ height: padBottom }} />
              </tr>
            )}
          </tbody>
        </table>
        {views.length === 0 && <p className="empty muted">{feed.status === 'loading' ? 'Loading the live feed…' : 'No session matches.'}</p>}
      </section>
      {terminating && (
        <TerminateDialog
          sessions={terminating}
          onClose={(done) => {
            setTerminating(null)
            if (done) setSelection({})
          }}
        />
      )}
      {route.id && <SessionDrawer id={route.id} onTerminate={(v) => setTerminating([v])} />}
    </section>
  )
}
