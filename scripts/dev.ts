// `npm run dev`: the API (restarted on changes) and the Vite dev server for the browser
// pages, which proxies /api, /ws and /docs to the API. Open the URL Vite prints.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createServer } from 'vite'

const root = fileURLToPath(new URL('..', import.meta.url))

const api = spawn(`${root}node_modules/.bin/tsx`, ['watch', 'src/main.ts'], { cwd: root, stdio: 'inherit', env: process.env })
const vite = await createServer({ configFile: `${root}client/vite.config.ts` })
await vite.listen()
process.stdout.write(`\n  Browser pages with hot reload: ${vite.resolvedUrls?.local[0] ?? 'http://localhost:5173/'}  (the API runs beside it)\n\n`)

const stop = async () => {
  api.kill('SIGTERM')
  await vite.close()
  process.exit(0)
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
api.on('exit', (code) => {
  if (code) process.exit(code)
})
