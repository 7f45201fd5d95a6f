// The load generator runs in a child process of its own, so that the clients' work (10,000
// sockets' frames, JSON, timers) never shares an event loop with the server it measures.
// Both sides of that arrangement live here: a tiny request/answer protocol over IPC.
import { type ChildProcess, fork } from 'node:child_process'

/** What every load generator presents itself as: the login's user agent and an allowed origin. */
export const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36 tessera-bench'
export const ORIGIN = 'http://localhost:3000'

export function progress(name: string, text: string) {
  const t = new Date().toISOString().slice(11, 19)
  console.log(`${t} [${name}] ${text}`)
}

type Request = { id: number; cmd: string; args: unknown }
type Answer = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string }

/** Parent side: starts `file` and calls the handlers it serves. */
export class LoadProcess {
  private readonly child: ChildProcess
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  private nextId = 1
  private exited = false

  constructor(file: string) {
    // 'advanced' serialisation sends arrays of latencies as structured clones, not JSON.
    this.child = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    this.child.on('message', (m: Answer) => {
      const w = this.waiting.get(m.id)
      if (!w) return
      this.waiting.delete(m.id)
      if (m.ok) w.resolve(m.result)
      else w.reject(new Error(`load generator: ${m.error}`))
    })
    this.child.on('exit', (code, signal) => {
      this.exited = true
      for (const w of this.waiting.values()) w.reject(new Error(`load generator exited (${signal ?? code})`))
      this.waiting.clear()
    })
  }

  call<T>(cmd: string, args: unknown = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error('load generator has exited'))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ id, cmd, args } satisfies Request)
    })
  }

  /** Sends the load generator a signal: SIGSTOP freezes its sockets as a network cut would (P12). */
  signal(signal: NodeJS.Signals): void {
    if (!this.exited) this.child.kill(signal)
  }

  /** Safe twice; the child exits when its IPC channel closes. */
  close(): Promise<void> {
    if (this.exited) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
      this.child.kill('SIGCONT')
      this.child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      if (this.child.connected) this.child.disconnect()
      else this.child.kill('SIGTERM')
    })
  }
}

/** Child side: answers the parent's calls with `handlers` until the parent goes away. */
export function serveLoad(handlers: Record<string, (args: never) => Promise<unknown>>) {
  if (!process.send) throw new Error('this file is a load generator: it is started by a benchmark, not run directly')
  // The parent cleans up; the load generator has nothing to keep, so a Ctrl-C just ends it.
  process.on('SIGINT', () => process.exit(130))
  process.on('disconnect', () => process.exit(0))
  process.on('message', async (m: Request) => {
    const handler = handlers[m.cmd]
    try {
      if (!handler) throw new Error(`unknown command ${m.cmd}`)
      const result = await handler(m.args as never)
      process.send!({ id: m.id, ok: true, result } satisfies Answer)
    } catch (err) {
      process.send!({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Answer)
    }
  })
}
