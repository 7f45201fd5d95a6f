// The admin dashboard: the sign-in page for visitors, "administrators only" for other
// roles, and for admins the live view of every session.
import { Toaster } from 'sonner'
import { ErrorBoundary, SessionProvider, SessionResetModal, useSession } from 'tessera/react'
import { Loading } from '../ui/Loading.js'
import { SignIn } from '../ui/SignIn.js'
import { Shell } from './Shell.js'

function AdminsOnly() {
  const { state } = useSession()
  return (
    <main className="center-page">
      <section className="card narrow" aria-labelledby="admins-only">
        <h1 id="admins-only" className="title">
          Administrators only
        </h1>
        <p className="muted">
          You are signed in as <strong>{state?.user.username}</strong> ({state?.user.role}). The dashboard shows every session of every user, so only
          administrators may open it.
        </p>
        <div className="row">
          <a className="button button-primary" href="/">
            Go to the app
          </a>
          <SessionResetModal
            trigger={
              <button type="button" className="button button-secondary">
                Sign out
              </button>
            }
          />
        </div>
      </section>
    </main>
  )
}

function Gate() {
  const { phase, state } = useSession()
  if (phase === 'live') return state?.user.role === 'admin' ? <Shell /> : <AdminsOnly />
  if (phase === 'signedOut' || phase === 'ended') return <SignIn title="Sign in to the admin dashboard" />
  return <Loading />
}

export function App() {
  return (
    <ErrorBoundary>
      <SessionProvider>
        <Gate />
        <Toaster position="bottom-right" closeButton theme="system" />
      </SessionProvider>
    </ErrorBoundary>
  )
}
