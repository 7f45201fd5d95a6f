// The demo app: sign-in, then one page that shows the session and what keeps its tabs in step.
import { Toaster } from 'sonner'
import { ErrorBoundary, SessionControls, SessionProvider, useSession } from 'tessera/react'
import { Home } from './Home.js'
import { Loading } from '../ui/Loading.js'
import { SignIn } from '../ui/SignIn.js'
import { useSessionToasts } from './toasts.js'

function Screens() {
  const { phase, client } = useSession()
  useSessionToasts()
  if (phase === 'live') return <Home />
  if (phase === 'signedOut' || phase === 'ended') {
    return (
      <SignIn
        hint={
          <>
            Trying the demo? The demo accounts are printed when the server first starts, and by <code>npm run seed:demo</code>.
          </>
        }
      />
    )
  }
  // Starting: a tab opened on a live session shows what the browser last knew at once.
  return client.cached ? <Home cached={client.cached} /> : <Loading />
}

export function App() {
  return (
    <ErrorBoundary>
      <SessionProvider>
        <Screens />
        <Toaster position="bottom-right" closeButton theme="system" />
        {import.meta.env.DEV && <SessionControls />}
      </SessionProvider>
    </ErrorBoundary>
  )
}
