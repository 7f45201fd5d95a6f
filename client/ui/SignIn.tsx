// Sign-in: the server's own error words, the lockout's remaining time, the device choice
// at the session limit, and why the last session ended.
import { type FormEvent, type ReactNode, useEffect, useState } from 'react'
import { type Ending, SessionError, type SessionView } from 'tessera/client'
import { useSession } from 'tessera/react'
import { countdown } from './time.js'

function endingText(ending: Ending): { title: string; detail: string } {
  if (ending.kind === 'expired') {
    return { title: 'Session expired', detail: ending.reason === 'lifetime' ? 'Sessions last a limited time. Sign in again to continue.' : 'You were away for a while. Sign in again to continue.' }
  }
  if (ending.kind === 'terminated') {
    return { title: ending.note ? `${ending.message}: ${ending.note}` : ending.message, detail: 'Sign in again to continue.' }
  }
  return { title: 'You are signed out', detail: 'Your session ended in every tab of this browser.' }
}

/** Seconds left of a lockout or rate limit, counting down. */
function useRetryCountdown(seconds: number | null): number | null {
  const [until, setUntil] = useState<number | null>(null)
  const [, tick] = useState(0)
  useEffect(() => setUntil(seconds ? Date.now() + seconds * 1000 : null), [seconds])
  useEffect(() => {
    if (!until) return
    const timer = setInterval(() => tick((n) => n + 1), 1000)
    return () => clearInterval(timer)
  }, [until])
  if (!until) return null
  const left = (until - Date.now()) / 1000
  return left > 0 ? left : null
}

export function SignIn({ title = 'Sign in', hint }: { title?: string; hint?: ReactNode }) {
  const { client, ending, dispatch } = useSession()
  const [username, setUsername] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<SessionError | null>(null)
  const [devices, setDevices] = useState<SessionView[] | null>(null)
  const retryIn = useRetryCountdown((error?.details.retryAfterSeconds as number | undefined) ?? null)
  const notice = ending && endingText(ending)

  const signIn = async (endSessionId?: string) => {
    setBusy(true)
    setError(null)
    try {
      await client.signIn(username, password, endSessionId ? { endSessionId } : {})
      dispatch({ type: 'dismissEnding' })
    } catch (err) {
      const e = err instanceof SessionError ? err : new SessionError('INTERNAL', 'Signing in failed; try again.')
      setError(e)
      setDevices(e.code === 'SESSION_LIMIT_REACHED' ? ((e.details.sessions as SessionView[] | undefined) ?? []) : null)
    } finally {
      setBusy(false)
    }
  }
  const submit = (event: FormEvent) => {
    event.preventDefault()
    void signIn()
  }
  const locked = retryIn !== null && (error?.code === 'ACCOUNT_LOCKED' || error?.code === 'RATE_LIMITED')

  return (
    <main className="center-page">
      <section className="card narrow" aria-labelledby="sign-in-title">
        <div className="brand brand-large" aria-hidden="true">
          <span className="brand-mark" />
          Tessera
        </div>
        <h1 id="sign-in-title" className="title">
          {title}
        </h1>
        {notice && (
          <div className="notice notice-warning" role="status" data-testid="ending-notice">
            <strong>{notice.title}</strong>
            <span>{notice.detail}</span>
          </div>
        )}
        <form className="stack" onSubmit={submit} noValidate>
          <div className="field">
            <label htmlFor="username">Username</label>
            <input id="username" className="input" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="password">Password</label>
            <input
              id="password"
              className="input"
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </div>
          {error && error.code !== 'SESSION_LIMIT_REACHED' && (
            <div className="notice notice-danger" role="alert" data-testid="sign-in-error">
              <span>{error.message}</span>
              {locked && <strong>Try again in {countdown(retryIn)}.</strong>}
            </div>
          )}
          <button type="submit" className="button button-primary button-block" disabled={busy || locked || !username || !password}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
        {hint && <p className="muted small">{hint}</p>}
        {devices && (
          <div className="stack" role="alert">
            <p>
              <strong>{error?.message}</strong> Choose a device to sign out, and you will be signed in here instead.
            </p>
            <ul className="list">
              {devices.map((d) => (
                <li key={d.id} className="list-row">
                  <span>
                    {[d.device.browser, d.device.os].filter(Boolean).join(' on ') || 'Unknown device'}
                    <span className="muted"> · {d.ip ?? 'unknown IP'}</span>
                  </span>
                  <button type="button" className="button button-secondary button-small" disabled={busy} onClick={() => void signIn(d.id)}>
                    Sign out that device
                  </button>
                </li>
              ))}
            </ul>
          </div>
        )}
      </section>
    </main>
  )
}
