import { describe, expect, it } from 'vitest'
import { invoke } from './invoke.js'

const identity = { functionName: 'f', region: 'us-east-2', timeoutMs: 200, memoryLimitInMB: 128 }
const event = { Records: [] }

describe('invoke', () => {
  it('fails an invocation that outlives the timeout, as Lambda does', async () => {
    const { answer } = await invoke(() => new Promise(() => {}), event, identity)
    expect('thrown' in answer && (answer.thrown as Error).message).toBe(
      'Task timed out after 0.20 seconds',
    )
  })

  it('hands the answer over as JSON, the way Lambda reads it', async () => {
    const at = new Date(0)
    const { answer } = await invoke(async () => ({ at, gone: undefined }), event, identity)
    expect(answer).toEqual({ returned: { at: '1970-01-01T00:00:00.000Z' } })
    expect(await invoke(async () => undefined, event, identity)).toMatchObject({
      answer: { returned: null },
    })
  })

  it('fails an invocation whose answer cannot be serialized', async () => {
    const { answer } = await invoke(async () => ({ n: 1n }), event, identity)
    expect('thrown' in answer && (answer.thrown as Error).message).toMatch(/the answer is not JSON/)
  })

  it('gives each invocation its own request id and a context that counts down', async () => {
    let remaining = -1
    const { requestId } = await invoke(
      (_, context) => {
        remaining = context.getRemainingTimeInMillis()
        expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/)
        expect(context.invokedFunctionArn).toBe('arn:aws:lambda:us-east-2:000000000000:function:f')
      },
      event,
      identity,
    )
    expect(remaining).toBeGreaterThan(100)
    expect(remaining).toBeLessThanOrEqual(200)
    expect(requestId).not.toBe((await invoke(() => {}, event, identity)).requestId)
  })
})
