export function Loading() {
  return (
    <main className="center-page" aria-busy="true">
      <p className="muted" role="status">
        Loading your session…
      </p>
    </main>
  )
}
