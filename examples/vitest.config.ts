import { defineConfig } from 'vitest/config'

export default defineConfig({
  // The examples log through Powertools as in Lambda; the tests assert on answers, not logs.
  test: { env: { POWERTOOLS_LOG_LEVEL: 'SILENT' } },
})
