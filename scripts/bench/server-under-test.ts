// Starting a server under test in a process of its own (server-process.ts is the child's side).
import { fileURLToPath } from 'node:url'
import { onCleanup } from './harness.js'
import { LoadProcess } from './load-process.js'

/** Tessera, the bare baseline or the Socket.IO peer in a process of its own; stopped at cleanup. */
export async function startServerProcess(args: object): Promise<{ server: LoadProcess; address: string }> {
  const server = new LoadProcess(fileURLToPath(new URL('./server-process.ts', import.meta.url)))
  onCleanup(() => server.close())
  const { address } = await server.call<{ address: string }>('start', args)
  return { server, address }
}
