// Loaded with `node --import` by the benchmarks: reports the process's peak RSS when it exits, to a file named by
// KUPGRADE_BENCH_RSS_FILE, so whole-process memory is measured without changing kupgrade itself.
import { appendFileSync } from 'node:fs'

const file = process.env.KUPGRADE_BENCH_RSS_FILE
if (file) process.on('exit', () => appendFileSync(file, `${process.resourceUsage().maxRSS}\n`))
