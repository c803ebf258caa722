#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
import { main } from '../dist/cli/main.js'

main(process.argv).then(
  (code) => { process.exitCode = code },
  (err) => {
    // main() maps every expected error to an exit code; reaching here is a bug in kupgrade itself.
    process.stderr.write(`kupgrade: internal error: ${err && err.stack ? err.stack : err}\n`)
    process.exitCode = 70
  },
)
