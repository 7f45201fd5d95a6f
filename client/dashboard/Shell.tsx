// The dashboard's frame: navigation, the feed's connection, the alert count, the page.
import { toast } from 'sonner'
import { SessionResetModal, useSession } from 'tessera/react'
import { useAlerts } from './alerts.js'
import { useSessionFeed } from './feed.js'
import { AlertsPage } from './pages/AlertsPage.js'
import { AnalyticsPage } from './pages/AnalyticsPage.js'
import { HistoryPage } from './pages/HistoryPage.js'
import { SessionsPage } from './pages/SessionsPage.js'
import { SettingsPage } from './pages/SettingsPage.js'
import { href, type Page, useRoute } from './router.js'

const NAV: { page: Page; label: string }[] = [
  { page: 'sessions', label: 'Sessions' },
  { page: 'history', label: 'Login history' },
  { page: 'alerts', label: 'Alerts' },
  { page: 'analytics', label: 'Analytics' },
  { page: 'settings', label: 'Settings' },
]

const FEED_LABEL = { loading: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…' } as const
const FEED_CLASS = { loading: 'reconnecting', live: 'online', reconnecting: 'reconnecting' } as const

export function Shell() {
  const { state } = useSession()
  const route = useRoute()
  const feed = useSessionFeed()
  const alerts = useAlerts()
  return (
    <div className="admin">
      <header className="topbar">
        <div className="row">
          <span className="brand" aria-hidden="true">
            <span className="brand-mark" />
            Tessera <span className="muted">admin</span>
          </span>
          <nav aria-label="Dashboard" className="nav">
            {NAV.map((item) => (
              <a key={item.page} href={href(item.page)} className="nav-link" aria-current={route.page === item.page ? 'page' : undefined}>
                {item.label}
                {item.page === 'alerts' && alerts.unacknowledged > 0 && (
                  <span className="count" data-testid="alert-count">
                    {alerts.unacknowledged}
                    <span className="sr-only"> unacknowledged</span>
                  </span>
                )}
              </a>
            ))}
          </nav>
        </div>
        <div className="topbar-end">
          <span className={`badge badge-dot badge-${FEED_CLASS[feed.status]}`} role="status" data-testid="feed" data-state={feed.status}>
            <span className="sr-only">Live feed: </span>
            {FEED_LABEL[feed.status]}
          </span>
          <span className="user-chip">
            <span className="avatar" aria-hidden="true">
              {state?.user.username.slice(0, 1).toUpperCase()}
            </span>
            {state?.user.username}
          </span>
          <SessionResetModal
            onError={(error) => toast.error(error.message)}
            trigger={
              <button type="button" className="button button-secondary">
                Sign out
              </button>
            }
          />
        </div>
      </header>
      <main className="admin-main">
        {route.page === 'sessions' && <SessionsPage feed={feed} route={route} />}
        {route.page === 'history' && <HistoryPage route={route} />}
        {route.page === 'alerts' && <AlertsPage alerts={alerts} />}
        {route.page === 'analytics' && <AnalyticsPage />}
        {route.page === 'settings' && <SettingsPage />}
      </main>
    </div>
  )
}
