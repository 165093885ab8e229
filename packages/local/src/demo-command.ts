/** `shardwise demo`: the demo workload on the embedded kinesalite (the workload is `demo.ts`). */
import { existsSync } from 'node:fs'
import { type Command, type Flags, text, UsageError } from './cli-args.js'
import { runDemo } from './demo.js'

const DEMO_HANDLER = 'examples/dist/demo-handler.js'

export const demoFlags = {
  handler: { type: 'string' },
} satisfies Flags

const HELP = `Usage: shardwise demo [--handler <module>[:<export>]]

Starts kinesalite in this process, creates a stream of 4 shards, puts a mixed workload (JSON,
KPL aggregates, gzip records and a few poison records), and runs the handler through the
mapping with bisect, retries, ReportBatchItemFailures and a parallelization factor of 2. It
prints progress, a summary that says what each number means, the on-failure destination, and
the handler's own account when its module exports report(). It takes a few seconds.

  --handler <module>[:<export>]   default: \`${DEMO_HANDLER}\`, which needs a build
                                  (run \`pnpm demo\` from the repository root)
  -h, --help                      this help
`

export const demoCommand: Command = {
  name: 'demo',
  summary: 'a mixed workload on an embedded kinesalite, through the mapping, with a summary',
  help: HELP,
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
