// Loaded with `node --import` by the benchmarks: reports the process's peak RSS (KiB) and CPU time (user, system, in
// ms) when it exits, then the CPU time of the child processes it waited for (kubectl, hooks; Linux only, else 0), as one
// line `maxRSS userMs systemMs childUserMs childSystemMs` appended to KUPGRADE_BENCH_USAGE_FILE. CPU time stays
// meaningful on a loaded machine, where wall time mostly measures the other processes.
import { appendFileSync, readFileSync } from 'node:fs'

/** cutime and cstime of /proc/self/stat (fields 16 and 17, in clock ticks of 10 ms), in ms. */
function children() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return [Number(f[13]) * 10, Number(f[14]) * 10]
  } catch {
    return [0, 0]
  }
}

const file = process.env.KUPGRADE_BENCH_USAGE_FILE
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage()
    appendFileSync(file, `${u.maxRSS} ${Math.round(u.userCPUTime / 1000)} ${Math.round(u.systemCPUTime / 1000)} ${children().join(' ')}\n`)
  })
}
