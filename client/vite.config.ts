// The browser pages' Vite config: `npm run build:client` builds the demo app and the admin
// dashboard into dist/client/pages (shared chunks once, under /assets/), which the API
// serves at / and /admin; `npm run dev` serves them with a proxy to the API.
import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig, type Plugin } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))

/** The package's own entries, as the pages import them. */
export const aliases = {
  'tessera/client': here('./sdk/index.ts'),
  'tessera/react': here('./react/index.ts'),
}

/** The pages, and the path each is served at (by the API, and by the dev server). */
export const PAGES = { demo: '/', dashboard: '/admin' } as const

const api = `http://127.0.0.1:${process.env.PORT ?? 3000}`

/** In development, the pages answer at the paths the API serves them at. */
function pagePaths(): Plugin {
  return {
    name: 'tessera-page-paths',
    configureServer(server) {
      server.middlewares.use((req, _res, next) => {
        const path = req.url?.split('?')[0]
        for (const [page, at] of Object.entries(PAGES)) if (path === at) req.url = `/${page}/index.html`
        next()
      })
    },
  }
}

export default defineConfig({
  root: here('.'),
  publicDir: here('./public'),
  plugins: [react(), pagePaths()],
  resolve: { alias: aliases },
  build: {
    outDir: here('../dist/client/pages'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      input: Object.fromEntries(Object.keys(PAGES).map((page) => [page, here(`./${page}/index.html`)])),
      output: { chunkFileNames: 'assets/shared-[hash].js', assetFileNames: 'assets/[name]-[hash][extname]' },
    },
  },
  server: {
    port: Number(process.env.VITE_PORT ?? 5173),
    strictPort: true,
    proxy: {
      '/api': api,
      '/docs': api,
      // The admin API; the dashboard itself is /admin (above).
      '^/admin/.+': api,
      '/ws': { target: api.replace('http', 'ws'), ws: true },
    },
  },
})
