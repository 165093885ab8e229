import { defineConfig } from 'vitest/config'

// Building the site and starting Chromium take long on a busy machine.
export default defineConfig({
  test: { include: ['test/**/*.test.ts'], testTimeout: 300_000, hookTimeout: 300_000 },
})
