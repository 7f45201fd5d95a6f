/**
 * A service the process needs (PostgreSQL, Redis) cannot be used: printed as one line at
 * start-up, naming the service, its URL (password hidden) and what to do.
 */
export class DependencyError extends Error {
  private constructor(
    readonly service: string,
    readonly url: string,
    message: string,
  ) {
    super(message)
  }

  /** Nothing answers at the URL. */
  static unreachable(service: string, url: string, howToStart: string): DependencyError {
    return new DependencyError(service, url, `${service} is not reachable at ${redactUrl(url)}. Start it with: ${howToStart}`)
  }

  /** It answers, but the database the URL names is missing or was never set up. */
  static missing(service: string, url: string, problem: string): DependencyError {
    return new DependencyError(service, url, `${service} at ${redactUrl(url)}: ${problem}`)
  }

  /** It answers, but refuses what start-up needs (an unknown role, a wrong password, …). */
  static refused(service: string, url: string, problem: string, hint: string): DependencyError {
    return new DependencyError(service, url, `${service} at ${redactUrl(url)} refused: ${oneLine(problem)}. ${hint}`)
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/\.$/, '')
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
