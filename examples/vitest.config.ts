import { defineConfig } from 'vitest/config'

export default defineConfig({
  // The examples log through Powertools as in Lambda; the tests assert on answers, not logs.
  // orders-dlq's module-level handler reads its queue URL as on Lambda, where the construct sets it.
  test: {
    env: {
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      SHARDWISE_POISON_QUEUE_URL: 'https://sqs.us-east-2.amazonaws.com/123456789012/orders-dlq',
    },
  },
})
