// --profile: a CPU profile of the server process (this one) over one phase, saved as a
// .cpuprofile (open it in Chrome DevTools) and summarised as the functions with the most
// self time, so a run says where Tessera's time went without another tool.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
}

export interface Hotspot {
  fn: string
  selfMs: number
  percent: number
}

export class Profiler {
  private readonly session = new Session()

  async start(): Promise<void> {
    this.session.connect()
    await this.session.post('Profiler.enable')
    await this.session.post('Profiler.setSamplingInterval', { interval: 200 })
    await this.session.post('Profiler.start')
  }

  /**
   * Stops, writes the profile to a temporary file and returns the top `top` functions by
   * self time, and Tessera's own functions (src/) by inclusive time: the synchronous work
   * under them, since what follows an `await` is sampled under a microtask, not its caller.
   */
  async stop(label: string, top = 15): Promise<{ file: string; hotspots: Hotspot[]; tessera: Hotspot[] }> {
    const { profile } = (await this.session.post('Profiler.stop')) as unknown as { profile: CpuProfile }
    this.session.disconnect()
    const file = join(tmpdir(), `tessera-${label}-${Date.now()}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    return { file, hotspots: hotspots(profile, top), tessera: inclusive(profile, top, '/src/') }
  }
}

function keyOf(n: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = n.callFrame
  const where = url ? `${relative(root, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : ''
  return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
}

function inclusive(profile: CpuProfile, top: number, pathPart: string): Hotspot[] {
  const totalMs = (profile.endTime - profile.startTime) / 1000
  const msPerSample = profile.samples?.length ? totalMs / profile.samples.length : 0
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const subtree = new Map<number, number>()
  const hits = (id: number): number => {
    const known = subtree.get(id)
    if (known !== undefined) return known
    const n = byId.get(id)!
    const sum = (n.hitCount ?? 0) + (n.children ?? []).reduce((a, c) => a + hits(c), 0)
    subtree.set(id, sum)
    return sum
  }
  const root = process.cwd()
  const byFn = new Map<string, number>()
  // Counted once per path: a function that calls itself (or appears twice up a stack) is not doubled.
  const walk = (id: number, open: Set<string>) => {
    const n = byId.get(id)!
    const key = n.callFrame.url.includes(pathPart) && !n.callFrame.url.includes('node_modules') ? keyOf(n, root) : null
    const counted = key !== null && !open.has(key)
    if (counted) {
      byFn.set(key, (byFn.get(key) ?? 0) + hits(id) * msPerSample)
      open.add(key)
    }
    for (const c of n.children ?? []) walk(c, open)
    if (counted) open.delete(key)
  }
  walk(profile.nodes[0]!.id, new Set())
  return [...byFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, selfMs]) => ({ fn, selfMs, percent: (100 * selfMs) / totalMs }))
}

function hotspots(profile: CpuProfile, top: number): Hotspot[] {
  const totalMs = (profile.endTime - profile.startTime) / 1000
  const samples = profile.samples?.length ?? 0
  const msPerSample = samples > 0 ? totalMs / samples : 0
  const byFn = new Map<string, number>()
  const root = process.cwd()
  for (const n of profile.nodes) {
    if (!n.hitCount) continue
    const key = keyOf(n, root)
    byFn.set(key, (byFn.get(key) ?? 0) + n.hitCount * msPerSample)
  }
  return [...byFn]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, selfMs]) => ({ fn, selfMs, percent: (100 * selfMs) / totalMs }))
}

export function printHotspots(title: string, p: { file: string; hotspots: Hotspot[]; tessera: Hotspot[] }) {
  const print = (spots: Hotspot[]) => {
    for (const s of spots) console.log(`  ${s.percent.toFixed(1).padStart(5)} %  ${s.selfMs.toFixed(0).padStart(6)} ms  ${s.fn}`)
  }
  console.log(`\n${title}: CPU profile ${p.file}\nself time, % of the phase's wall time:`)
  print(p.hotspots)
  console.log("Tessera's functions (src/), synchronous time under each:")
  print(p.tessera)
}
