/** A service the process needs (PostgreSQL, Redis) cannot be reached: printed as one line at start-up. */
export class DependencyError extends Error {
  constructor(
    readonly service: string,
    readonly url: string,
    readonly howToStart: string,
  ) {
    super(`${service} is not reachable at ${redactUrl(url)}. Start it with: ${howToStart}`)
  }
}

/** Hides a password in a connection URL. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}
