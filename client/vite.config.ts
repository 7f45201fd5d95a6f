// The demo app's Vite config: `npm run build:client` builds it into dist/client/demo, which
// the API process serves at /; `npm run dev` serves it with a proxy to the API.
import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/** The package's own entries, as the pages import them. */
export const aliases = {
  'tessera/client': here('./sdk/index.ts'),
  'tessera/react': here('./react/index.ts'),
}

const api = `http://127.0.0.1:${process.env.PORT ?? 3000}`

export default defineConfig({
  root: here('./demo'),
  plugins: [react()],
  resolve: { alias: aliases },
  build: { outDir: here('../dist/client/demo'), emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 600 },
  server: {
    port: Number(process.env.VITE_PORT ?? 5173),
    strictPort: true,
    proxy: {
      '/api': api,
      '/docs': api,
      '/ws': { target: api.replace('http', 'ws'), ws: true },
    },
  },
})
