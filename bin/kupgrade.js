#!/usr/bin/env node
// Thin launcher: the compiled CLI, bundled (scripts/bundle.mjs), lives in dist/bundle/ (built by `npm install` through
// the prepare script).
import { setFlagsFromString } from 'node:v8'

// V8 optimises a function (TurboFan, on a background thread) once it has run about 66 KB of its bytecode, and a
// process waits for every queued optimisation before it exits. Most kupgrade commands run their code once, over a
// plan: a 2,000-node `validate` spent about a third of its CPU optimising code it was about to stop running, and
// waited ~90 ms at its end for jobs still queued. With a budget 7.4 times as large only code that runs long (a
// 10,000-node plan's loops, the lab's servers, an apply) is optimised. Measured (bench/plan.mjs, 2,000 nodes, against
// the default): validate 610 → 480 ms wall, 808 → 543 ms CPU; `plan --format json` 719 → 664 ms, 871 → 663 ms CPU;
// bench/hostile.mjs's 10,000-node validate and 150,000 unknown fields take ~6 % longer. Set before any of kupgrade's
// code is compiled: the bundle is imported below, not statically.
setFlagsFromString('--interrupt-budget=500000')

// `kupgrade plan … | head` closes the pipe early; that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw err
  })
}

const { main } = await import('../dist/bundle/main.js')
main(process.argv).then(
  (code) => { process.exitCode = code },
  (err) => {
    // main() maps every expected error to an exit code; reaching here is a bug in kupgrade itself.
    process.stderr.write(`kupgrade: internal error: ${err && err.stack ? err.stack : err}\n`)
    process.exitCode = 70
  },
)
