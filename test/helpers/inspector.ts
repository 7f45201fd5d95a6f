// Full garbage collections in a child process, through its inspector (started with
// `--inspect=127.0.0.1:0`): memory read right after one is read at the same point of the
// collector's cycle every time, so a trend in it is the program's, not the collector's.
// (RSS sampled at random points of the cycle swung by ±25 % in the soak.)
import WebSocket from 'ws'
import { until } from './wait.js'

export const INSPECT_ARG = '--inspect=127.0.0.1:0'

export interface Collector {
  /** A full collection; resolves once it is done. */
  collect(): Promise<void>
  close(): void
}

/** Connects to the inspector a child announced on its output ("Debugger listening on ws://…"). */
export async function collectorOf(output: () => string): Promise<Collector> {
  const url = await until('the inspector to listen', () => /Debugger listening on (ws:\/\/\S+)/.exec(output())?.[1], 60_000)
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  let nextId = 0
  return {
    collect: () =>
      new Promise<void>((resolve, reject) => {
        const id = ++nextId
        const onMessage = (data: WebSocket.RawData) => {
          const reply = JSON.parse(data.toString()) as { id?: number; error?: { message: string } }
          if (reply.id !== id) return
          ws.off('message', onMessage)
          if (reply.error) reject(new Error(`HeapProfiler.collectGarbage: ${reply.error.message}`))
          else resolve()
        }
        ws.on('message', onMessage)
        ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }))
      }),
    close: () => ws.close(),
  }
}
