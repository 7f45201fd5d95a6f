// Waiting in tests: by polling for a state, with generous limits (never a timing assertion).
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Polls until `probe` answers something truthy; fails after `ms`. */
export async function until<T>(what: string, probe: () => Promise<T | false | null | undefined> | T | false | null | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** The value of one Prometheus sample in a /metrics text, 0 when absent. */
export function sample(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const labelText = line.slice(name.length).split('}')[0] ?? ''
    if (want.every((w) => labelText.includes(w))) return Number(line.split(' ').at(-1))
  }
  return 0
}
