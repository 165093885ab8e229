/**
 * CI runs the tests on each Node it supports (`.ci/run`) and says which through
 * SHARDWISE_EXPECT_NODE, so that a run meant for Node 24 that picked up another Node fails
 * instead of passing on the wrong one.
 */
import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'

const engines = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    engines: { node: string }
  }
).engines.node
const major = Number(process.versions.node.split('.')[0])

it('runs on a Node the packages declare, and on the one CI asked for', () => {
  console.log(`tests run on Node ${process.version} (engines: ${engines})`)
  const least = /^>=(\d+)$/.exec(engines)
  expect(least, `engines.node is a plain lower bound: ${engines}`).not.toBeNull()
  expect(major).toBeGreaterThanOrEqual(Number(least?.[1]))
  const expected = process.env.SHARDWISE_EXPECT_NODE
  if (expected !== undefined && expected !== '') expect(`${major}`).toBe(expected)
})
