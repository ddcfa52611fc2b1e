import { defineConfig } from 'vite'

/**
 * Two library builds from the same sources:
 * - default: the React component (ESM), React left to the host app (peer dependency);
 * - `--mode element`: the standalone <burnrate-spend> script, everything inside, React swapped for
 *   Preact through preact/compat (same API, a tenth of the size).
 */
export default defineConfig(({ mode }) => {
  const element = mode === 'element'
  return {
    esbuild: { jsx: 'automatic', jsxImportSource: element ? 'preact' : 'react', legalComments: 'none' },
    resolve: element
      ? {
          alias: [
            { find: /^react$/, replacement: 'preact/compat' },
            { find: /^react-dom$/, replacement: 'preact/compat' },
            { find: /^react\/jsx-runtime$/, replacement: 'preact/jsx-runtime' },
          ],
        }
      : {},
    define: { 'process.env.NODE_ENV': JSON.stringify('production') },
    build: {
      target: 'es2020',
      emptyOutDir: !element,
      sourcemap: true,
      lib: element
        ? { entry: 'src/element.tsx', formats: ['es'], fileName: () => 'burnrate-spend.js' }
        : { entry: 'src/index.ts', formats: ['es'], fileName: () => 'burnrate-widget.js' },
      rollupOptions: element ? {} : { external: ['react', 'react-dom', 'react/jsx-runtime'] },
    },
  }
})
