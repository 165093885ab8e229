// The workspace packages the site documents: a page for each one with a README, and an API
// reference for each one that is published (not `private`). README table order first.
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

function rank(dir) {
  const i = ORDER.indexOf(dir)
  return i === -1 ? ORDER.length : i
}

/** @type {{ dir: string, name: string, published: boolean, readme: boolean }[]} */
export const workspacePackages = readdirSync(join(repoRoot, 'packages'))
  .filter((dir) => existsSync(join(repoRoot, 'packages', dir, 'package.json')))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
  .map((dir) => {
    const manifest = JSON.parse(
      readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8'),
    )
    return {
      dir,
      name: manifest.name,
      published: manifest.private !== true,
      readme: existsSync(join(repoRoot, 'packages', dir, 'README.md')),
    }
  })

/** The packages with a page of their own, made from their README. */
export const packages = workspacePackages.filter((p) => p.readme)
