import react from '@vitejs/plugin-react'
import { defineConfig } from 'vitest/config'

// The dashboard is served by the flagpole server itself (embedded from dist/). In
// development, `npm run dev` proxies the API to a server started by `cargo xtask run`.
const server = 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  server: {
    proxy: {
      '/api': { target: server, changeOrigin: false },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
  },
})
