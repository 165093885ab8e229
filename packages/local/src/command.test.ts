import { afterEach, describe, expect, it, vi } from 'vitest'
import { main } from './command.js'

function capture() {
  let out = ''
  let err = ''
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk)
    return true
  })
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err += String(chunk)
    return true
  })
  return { out: () => out, err: () => err }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('shardwise', () => {
  it('--help documents every flag the parser accepts', async () => {
    const io = capture()
    expect(await main(['--help'])).toBe(0)
    const help = io.out()
    const source = await import('node:fs').then((fs) =>
      fs.readFileSync(new URL('./command.ts', import.meta.url), 'utf8'),
    )
    const block = source.slice(source.indexOf('const options = {'), source.indexOf('} satisfies'))
    const flags = [...block.matchAll(/^\s+'?([a-z-]+)'?: \{/gm)].map((m) => m[1])
    expect(flags.length).toBeGreaterThan(15)
    for (const flag of flags) expect(help).toContain(`--${flag}`)
    expect(help).toContain('--no-bisect-batch-on-function-error')
  })

  it('refuses an unknown flag', async () => {
    const io = capture()
    expect(await main(['run', '--batchsize', '10'])).toBe(2)
    expect(io.err()).toContain('batchsize')
  })

  it('refuses a flag that needs a number', async () => {
    const io = capture()
    expect(await main(['run', '--handler', 'h.js', '--stream', 's', '--batch-size', 'ten'])).toBe(2)
    expect(io.err()).toContain('--batch-size takes a number')
  })

  it('refuses a response type Lambda does not know', async () => {
    const io = capture()
    const args = [
      'run',
      '--handler',
      'h.js',
      '--stream',
      's',
      '--function-response-types',
      'Partial',
    ]
    expect(await main(args)).toBe(2)
    expect(io.err()).toContain('ReportBatchItemFailures')
  })

  it('asks for the handler and the stream', async () => {
    const io = capture()
    expect(await main(['run', '--stream', 's'])).toBe(2)
    expect(io.err()).toContain('--handler is required')
  })
})
