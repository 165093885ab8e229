// The packages that get a page: every packages/<dir> with a README, in the README's table order
// first (the middlewares, then the tools), the rest after.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

export const repoRoot = join(import.meta.dirname, '..', '..')
const ORDER = [
  'kinesis-decode',
  'json-parse',
  'avro-parse',
  'partial-failures',
  'observe',
  'sqs-poison-sink',
  'local',
  'cdk',
  'testing',
  'core',
]

const dirs = readdirSync(join(repoRoot, 'packages')).filter((dir) =>
  existsSync(join(repoRoot, 'packages', dir, 'README.md')),
)
dirs.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))

function rank(dir) {
  const i = ORDER.indexOf(dir)
  return i === -1 ? ORDER.length : i
}

/** @type {{ dir: string, name: string }[]} */
export const packages = dirs.map((dir) => ({
  dir,
  name: JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8')).name,
}))
