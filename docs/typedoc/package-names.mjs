// TypeDoc names a module by its path ("core/src"): name it by its package ("@shardwise/core").
import { readFileSync } from 'node:fs'
import { Converter, ReflectionKind } from 'typedoc'

export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const module of context.project.getReflectionsByKind(ReflectionKind.Module)) {
      const dir = /^([^/]+)\/src$/.exec(module.name)?.[1]
      if (!dir) continue
      const manifest = new URL(`../../packages/${dir}/package.json`, import.meta.url)
      module.name = JSON.parse(readFileSync(manifest, 'utf8')).name
    }
  })
}
