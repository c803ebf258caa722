#!/usr/bin/env node
// `npm run bench`: every benchmark, one after another; each prints its own figures. Nothing here asserts on time.
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
let failed = false
for (const name of ['plan', 'hostile', 'lab', 'facts', 'check', 'apply', 'rollback']) {
  if (only.length && !only.includes(name)) continue
  const file = join(here, `${name}.mjs`)
  if (!existsSync(file)) continue
  console.log(`\n== bench/${name}.mjs`)
  const r = spawnSync(process.execPath, [file], { stdio: 'inherit' })
  if (r.status !== 0) {
    failed = true
    console.log(`bench/${name}.mjs exited ${r.status}`)
  }
}
process.exitCode = failed ? 1 : 0
