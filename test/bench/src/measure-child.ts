/** Starts the child that measures one path (`measure.js`), as every step of the bench does. */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { SpeedTask } from './measure.js'
import type { MemoryTask } from './memory.js'

const measureJs = fileURLToPath(new URL('measure.js', import.meta.url))

/** Its errors go to the bench's standard error; its results come back by IPC. */
export function forkMeasure(task: SpeedTask | MemoryTask): ChildProcess {
  return fork(measureJs, [JSON.stringify(task)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
}
