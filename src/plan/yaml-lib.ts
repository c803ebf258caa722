import { createRequire } from 'node:module'

type YamlLib = typeof import('yaml')
let lib: YamlLib | undefined

/**
 * The `yaml` package (positions, precise syntax errors), loaded on first use. A valid plan is read by js-yaml's fast
 * path and never needs it, and importing it costs `plan` and `validate` tens of milliseconds; it is required, not
 * imported, because the callers are synchronous. The same module instance an `import 'yaml'` elsewhere gets.
 */
export const yamlLib = (): YamlLib => (lib ??= createRequire(import.meta.url)('yaml') as YamlLib)
