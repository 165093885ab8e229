/** `shardwise demo`: the demo workload on the embedded kinesalite (the workload is `demo.ts`). */
import { existsSync } from 'node:fs'
import { type Command, type Flags, text, UsageError } from './cli-args.js'
import { runDemo } from './demo.js'

const DEMO_HANDLER = 'examples/dist/demo-handler.js'

export const demoFlags = {
  handler: { type: 'string' },
} satisfies Flags

export const demoCommand: Command = {
  name: 'demo',
  flags: demoFlags,
  async run(values, signal) {
    const given = text(values, 'handler')
    if (given === undefined && !existsSync(DEMO_HANDLER)) {
      throw new UsageError(
        `${DEMO_HANDLER} is missing: run the demo from the repository root after a build ` +
          '(pnpm demo), or pass --handler <module>',
      )
    }
    await runDemo({ handler: given ?? DEMO_HANDLER, out: process.stdout, signal })
    return 0
  },
}
