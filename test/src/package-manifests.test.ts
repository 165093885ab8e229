/**
 * What every published package must carry, so that a package made public later (a new one, or
 * `@shardwise/testing`) cannot be released without it: the license, where the code lives, where
 * to report bugs, keywords, the Node it needs, and the check of its packed tarball.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const root = new URL('../../', import.meta.url)
const REPOSITORY = 'https://github.com/shardwise/shardwise'

interface Manifest {
  name: string
  private?: boolean
  license?: string
  homepage?: string
  bugs?: { url?: string }
  repository?: { type?: string; url?: string; directory?: string }
  keywords?: string[]
  engines?: { node?: string }
  files?: string[]
  scripts?: Record<string, string>
}

function read(path: string): string {
  return readFileSync(new URL(path, root), 'utf8')
}

const rootManifest = JSON.parse(read('package.json')) as Manifest
const published = readdirSync(new URL('packages/', root))
  .filter((dir) => existsSync(new URL(`packages/${dir}/package.json`, root)))
  .map((dir) => ({ dir, manifest: JSON.parse(read(`packages/${dir}/package.json`)) as Manifest }))
  .filter(({ manifest }) => manifest.private !== true)

describe('package manifests', () => {
  it('finds the published packages', () => {
    expect(published.map(({ manifest }) => manifest.name)).toContain('@shardwise/core')
  })

  it('has an MIT LICENSE at the root, as package.json says', () => {
    const license = read('LICENSE')
    expect(rootManifest.license).toBe('MIT')
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} Shardwise contributors\n/)
  })

  it('points the root at the repository', () => {
    expect(rootManifest.repository).toEqual({ type: 'git', url: `git+${REPOSITORY}.git` })
    expect(rootManifest.homepage).toBe(`${REPOSITORY}#readme`)
    expect(rootManifest.bugs).toEqual({ url: `${REPOSITORY}/issues` })
  })

  describe.each(published)('$manifest.name', ({ dir, manifest }) => {
    it('carries the root LICENSE, for npm pack as well as pnpm pack', () => {
      expect(manifest.license).toBe('MIT')
      expect(read(`packages/${dir}/LICENSE`)).toBe(read('LICENSE'))
    })

    it('names its repository folder, homepage and bug tracker', () => {
      expect(manifest.repository).toEqual({
        type: 'git',
        url: `git+${REPOSITORY}.git`,
        directory: `packages/${dir}`,
      })
      expect(manifest.homepage).toBe(`${REPOSITORY}/tree/main/packages/${dir}#readme`)
      expect(manifest.bugs).toEqual({ url: `${REPOSITORY}/issues` })
    })

    it('has keywords', () => {
      expect(manifest.keywords?.length).toBeGreaterThan(2)
      expect(manifest.keywords).toContain('kinesis')
      for (const keyword of manifest.keywords ?? []) expect(keyword).toMatch(/^[a-z0-9][a-z0-9-]*$/)
    })

    it('needs the Node the root needs', () => {
      expect(manifest.engines?.node).toBe(rootManifest.engines?.node)
    })

    it('ships neither declaration maps nor tests, and has its tarball checked', () => {
      expect(manifest.files).toEqual(expect.arrayContaining(['dist', '!dist/**/*.d.ts.map']))
      expect(manifest.scripts?.['lint:package']).toBe('node ../../test/check-package.mjs')
    })

    it('empties dist before it builds, so a module moved or removed is not packed from an old build', () => {
      // `files` ships all of dist: tsc alone leaves the output of deleted sources there (a
      // verdict.js.map whose source had moved to another package failed the tarball check).
      expect(manifest.scripts?.build).toBe(
        `node -e "fs.rmSync('dist', { recursive: true, force: true })" && tsc -p tsconfig.build.json`,
      )
    })
  })

  it('releases every published package in the changeset fixed group, and nothing else', () => {
    const config = JSON.parse(read('.changeset/config.json')) as { fixed: string[][] }
    expect(config.fixed).toHaveLength(1)
    expect([...(config.fixed[0] ?? [])].sort()).toEqual(
      published.map(({ manifest }) => manifest.name).sort(),
    )
  })

  it('has changesets that changesets can read: front matter naming published packages and a bump', () => {
    const names = new Set(published.map(({ manifest }) => manifest.name))
    const changesets = readdirSync(new URL('.changeset/', root)).filter(
      (file) => file.endsWith('.md') && file !== 'README.md',
    )
    for (const file of changesets) {
      const text = read(`.changeset/${file}`)
      const front = /^---\n((?:"[^"]+": (?:major|minor|patch)\n)+)---\n\n\S/.exec(text)
      expect(front, `${file} opens with its front matter, then a summary`).not.toBeNull()
      for (const [, name] of (front?.[1] ?? '').matchAll(/^"([^"]+)"/gm)) {
        expect(names, `${file} names a published package`).toContain(name)
      }
    }
  })

  it("lists every published package in the README's pack loop", () => {
    const loop = /^for p in ([a-z -]+); do$/m.exec(read('README.md'))
    expect(loop, 'the README has a `for p in ...; do` pack loop').not.toBeNull()
    const packed = (loop?.[1] ?? '').split(' ').sort()
    expect(packed).toEqual(published.map(({ dir }) => dir).sort())
  })
})
