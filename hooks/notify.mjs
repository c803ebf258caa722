#!/usr/bin/env node
// Example hook: kupgrade passes the context as JSON on stdin and as KUPGRADE_* variables.
// A non-zero exit fails the hook point like a gate. Replace the log line with your chat or pager call.
let input = ''
for await (const chunk of process.stdin) input += chunk
const ctx = input ? JSON.parse(input) : {}
console.error(`kupgrade ${process.env.KUPGRADE_POINT ?? ctx.point ?? 'hook'}: ${process.env.KUPGRADE_CLUSTER ?? ''}/${process.env.KUPGRADE_NODE ?? ''}`)
