// A render error shows a friendly page with a way out, never a blank screen.
import { Component, type ErrorInfo, type ReactNode } from 'react'

interface State {
  error: Error | null
}

export class ErrorBoundary extends Component<{ children: ReactNode }, State> {
  override state: State = { error: null }

  static getDerivedStateFromError(error: Error): State {
    return { error }
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error('[tessera] the page failed to render', error, info.componentStack)
  }

  override render() {
    if (!this.state.error) return this.props.children
    return (
      <main className="center-page">
        <section className="card narrow" role="alert">
          <h1 className="title">Something went wrong on this page</h1>
          <p className="muted">Your session is safe. Reloading the page usually fixes this; if it keeps happening, tell your administrator.</p>
          <button type="button" className="button button-primary" onClick={() => location.reload()}>
            Reload the page
          </button>
        </section>
      </main>
    )
  }
}
