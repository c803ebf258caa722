#!/usr/bin/env node
// Thin launcher: the compiled CLI, bundled (scripts/bundle.mjs), lives in dist/bundle/ (built by `npm install` through
// the prepare script).
import { main } from '../dist/bundle/main.js'

// `kupgrade plan … | head` closes the pipe early; that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw err
  })
}

main(process.argv).then(
  (code) => { process.exitCode = code },
  (err) => {
    // main() maps every expected error to an exit code; reaching here is a bug in kupgrade itself.
    process.stderr.write(`kupgrade: internal error: ${err && err.stack ? err.stack : err}\n`)
    process.exitCode = 70
  },
)
