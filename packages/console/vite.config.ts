import { defineConfig } from 'vite'

/** The console SPA, served by the API under /console (packages/api/src/http/console-assets.ts). */
export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic', legalComments: 'none' },
  define: { 'process.env.NODE_ENV': JSON.stringify('production') },
  build: { target: 'es2022', sourcemap: true, manifest: true, outDir: 'dist', emptyOutDir: true, assetsInlineLimit: 0 },
})
