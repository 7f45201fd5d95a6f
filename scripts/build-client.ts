// `npm run build:client`: the demo app and the admin dashboard (dist/client/pages), the SDK
// and its React binding as
// the package's ./client and ./react entries (dist/client/sdk, dist/client/react, types in
// dist/client/types), then a table of sizes. The SDK must stay under 10 KiB min+gzip.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build, type InlineConfig } from 'vite'
import { aliases } from '../client/vite.config.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const at = (path: string) => `${root}${path}`
const SDK_LIMIT = 10 * 1024

function library(entry: string, outDir: string, external: string[]): InlineConfig {
  return {
    configFile: false,
    logLevel: 'warn',
    resolve: { alias: { 'tessera/client': aliases['tessera/client'] } },
    build: {
      lib: { entry: at(entry), formats: ['es'], fileName: 'index' },
      outDir: at(outDir),
      emptyOutDir: true,
      minify: true,
      sourcemap: true,
      rollupOptions: { external },
    },
  }
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

async function main() {
  const started = Date.now()
  process.stdout.write('building the pages… ')
  const pages = await build({ configFile: at('client/vite.config.ts'), logLevel: 'warn' })
  process.stdout.write('the SDK… ')
  await build(library('client/sdk/index.ts', 'dist/client/sdk', []))
  process.stdout.write('the React binding… ')
  await build(library('client/react/index.ts', 'dist/client/react', ['react', 'react/jsx-runtime', 'react-dom', '@radix-ui/react-dialog', 'tessera/client']))
  process.stdout.write('types… ')
  execFileSync(process.execPath, [at('node_modules/typescript/bin/tsc'), '-p', at('client/tsconfig.sdk.json')], { stdio: 'inherit' })
  process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n\n`)

  const rows: [string, string, string][] = []
  const measure = (label: string, file: string) => {
    const bytes = readFileSync(file)
    rows.push([label, kib(bytes.length), kib(gzipSync(bytes, { level: 9 }).length)])
    return gzipSync(bytes, { level: 9 }).length
  }
  const sdk = measure('SDK (tessera/client)', at('dist/client/sdk/index.js'))
  measure('React binding (tessera/react)', at('dist/client/react/index.js'))
  const outputs = (Array.isArray(pages) ? pages : [pages]).flatMap((o) => ('output' in o ? o.output : []))
  for (const chunk of outputs) {
    if (chunk.type === 'chunk' || chunk.fileName.endsWith('.css')) measure(`pages ${chunk.fileName}`, at(`dist/client/pages/${chunk.fileName}`))
  }
  const width = Math.max(...rows.map((r) => r[0].length))
  process.stdout.write(`${'bundle'.padEnd(width)}  minified   min+gzip\n`)
  for (const [label, min, gz] of rows) process.stdout.write(`${label.padEnd(width)}  ${min.padStart(9)}  ${gz.padStart(9)}\n`)
  if (sdk > SDK_LIMIT) {
    process.stderr.write(`\nThe SDK is ${kib(sdk)} min+gzip, over its ${kib(SDK_LIMIT)} budget.\n`)
    process.exit(1)
  }
  process.stdout.write(`\nSDK: ${kib(sdk)} of its ${kib(SDK_LIMIT)} budget (min+gzip).\n`)
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : err}\n`)
  process.exit(1)
})
