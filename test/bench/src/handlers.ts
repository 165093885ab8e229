/** Finds the compared paths: every `handlers/<format>.<path>` module, compiled or not. */
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { HandlerModule } from './types.js'

/** What a child process needs to load a handler module. */
export interface HandlerRef {
  /** `<format>.<path>` */
  id: string
  href: string
}

export interface HandlerFile extends HandlerRef {
  format: string
  path: string
}

const handlersDir = new URL('./handlers/', import.meta.url)
const NAME = /^([a-z0-9-]+)\.([a-z0-9-]+)\.(?:js|ts)$/

/** The reference path of every format: the others must give its output. */
export const REFERENCE = 'hand'

export function handlerFiles(format?: string): HandlerFile[] {
  const files: HandlerFile[] = []
  for (const name of readdirSync(fileURLToPath(handlersDir)).sort()) {
    const match = NAME.exec(name)
    if (match === null || name.endsWith('.test.ts')) continue
    const [, f, path] = match as unknown as [string, string, string]
    if (format !== undefined && f !== format) continue
    files.push({ format: f, path, id: `${f}.${path}`, href: new URL(name, handlersDir).href })
  }
  // The reference first in each format, so tables start with it.
  const rank = (file: HandlerFile) =>
    `${file.format}\u0000${file.path === REFERENCE ? '' : file.path}`
  return files.sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0))
}

export async function loadHandler(file: HandlerRef): Promise<HandlerModule> {
  const module = (await import(file.href)) as Partial<HandlerModule>
  if (typeof module.make !== 'function' || typeof module.label !== 'string') {
    throw new Error(`${file.id} must export label and make(sink)`)
  }
  return module as HandlerModule
}
