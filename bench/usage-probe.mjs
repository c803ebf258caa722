// Loaded with `node --import` by bench/hostile.mjs: reports the process's peak RSS (KiB) and CPU time (user, system,
// in ms) when it exits, as one line `maxRSS userMs systemMs` appended to KUPGRADE_BENCH_USAGE_FILE. CPU time stays
// meaningful on a loaded machine, where wall time mostly measures the other processes.
import { appendFileSync } from 'node:fs'

const file = process.env.KUPGRADE_BENCH_USAGE_FILE
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage()
    appendFileSync(file, `${u.maxRSS} ${Math.round(u.userCPUTime / 1000)} ${Math.round(u.systemCPUTime / 1000)}\n`)
  })
}
