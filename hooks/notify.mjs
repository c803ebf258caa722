#!/usr/bin/env zx
// kupgrade hook: a webhook notifier. Posts the hook context (JSON, as kupgrade passes it on stdin) to
// $KUPGRADE_WEBHOOK_URL, with a one-line `text` for chat tools (Slack/Mattermost incoming webhooks accept it).
// Use at any point: hooks: { beforeStage: [hooks/notify.mjs], afterCluster: [hooks/notify.mjs], onFailure: [hooks/notify.mjs] }.
// Exits non-zero when the webhook does not answer 2xx (that fails the hook point like a gate), unless
// KUPGRADE_WEBHOOK_OPTIONAL=1.
let input = ''
for await (const chunk of process.stdin) input += chunk
const ctx = input ? JSON.parse(input) : {}
const url = process.env.KUPGRADE_WEBHOOK_URL
const where = [ctx.stage, ctx.cluster, ctx.node].filter(Boolean).join(' › ')
// onFailure: how the run ended, in its own words (what failed, what was done about it, how to go on).
const failed = ctx.failure ? ` — ${ctx.failure.outcome}: ${ctx.failure.message}` : ''
const hop = ctx.hop ? ` ${ctx.hop.from} → ${ctx.hop.to}` : ''
const text = `kupgrade ${ctx.dryRun ? '(dry-run) ' : ''}${ctx.point ?? 'hook'}: ${where}${hop} (run ${ctx.runId})${failed}`
if (!url) {
  console.error(`${text}\nKUPGRADE_WEBHOOK_URL is not set: nothing sent`)
  process.exit(process.env.KUPGRADE_WEBHOOK_OPTIONAL === '1' ? 0 : 1)
}
try {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text, ...ctx }), signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  console.log(`notified ${new URL(url).host}: ${text}`)
} catch (err) {
  console.error(`webhook ${new URL(url).host} failed: ${err.message}`)
  process.exit(process.env.KUPGRADE_WEBHOOK_OPTIONAL === '1' ? 0 : 1)
}
