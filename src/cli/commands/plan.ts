import { closeSync, openSync, writeSync } from 'node:fs'
import { Option } from 'commander'
import { ExitCode, formatProblem, KupgradeError } from '../../errors.js'
import { loadPlan } from '../../plan/load.js'
import { buildExecutionPlan } from '../../planner/build.js'
import { preGateIds, saidByGate } from '../../planner/gates.js'
import { planJsonChunks } from '../../report/plan-json.js'
import { renderPlanMarkdown } from '../../report/plan-markdown.js'
import { renderPlanText } from '../../report/plan-text.js'
import { escapeControl, escapeDeep, escapeJsonBytes } from '../../util/escape.js'
import { deadlineOption } from '../options.js'
import type { RegisterCommand } from './index.js'
import { refuseLiveSkew } from '../../planner/skew-walk.js'

export interface PlanCommandOptions {
  format: 'text' | 'markdown' | 'json'
  out?: string
  live?: boolean
}

export const register: RegisterCommand = (program, ctx, setExit) => {
  program
    .command('plan')
    .description('the dry-run: expand a plan into the exact ordered steps `apply` would run')
    .argument('<plan>', 'plan file')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'markdown', 'json']).default('text'))
    .option('--out <file>', 'write the output to a file instead of stdout')
    .option('--live', 'first read the clusters (read-only: SSH + kubectl) and run the pre-gates: show their live state and gate results, skip steps already done')
    .option('--accept-new', 'with --live: record host keys of nodes not yet in known_hosts')
    .option('--deadline <duration>', 'with --live: overall limit per cluster for reading it (API and every node)', '60s')
    .addHelpText('after', `
Offline, the plan is expanded from the file alone (each cluster's \`from\` version). With --live the pre-gates run once
(as \`kupgrade check\` does) and their results are part of every format; a failed or unknown gate blocks, and the text
ends with the verdict: ready, or BLOCKED with each reason. The markdown format is made for pull-request comments;
json is the versioned ExecutionPlan (docs/execution-plan.md).

Exit codes: 0 ready, 2 invalid plan, 3 blocked by a gate (or a live state that disagrees with the plan)`)
    .action(async (file: string, opts: PlanCommandOptions & { acceptNew?: boolean; deadline: string }) => {
      const deadlineMs = deadlineOption(opts.deadline)
      const loaded = loadPlan(file)
      // Facts and gates pull in SSH and kubectl; an offline plan never loads them.
      const live = opts.live ? await readLive(loaded, ctx, Boolean(opts.acceptNew), deadlineMs) : undefined
      const gates = live ? await import('../../report/gate-report.js') : undefined
      // Each message once: drift already has its line in the live-state section of text and markdown, so only the
      // json (which has no such section) carries it among the warnings.
      const drift = new Set(live?.drift ?? [])
      const inDoc = (m: string) => opts.format === 'json' || !drift.has(m)
      // With --live every pre-gate ran on every cluster: a warning one of them reports too is left to its verdict.
      const gated = { gates: live ? preGateIds(loaded.plan.spec.gates) : [], clusters: loaded.plan.spec.clusters.map((c) => c.name) }
      const validation = loaded.warnings.filter((w) => !saidByGate(w, gated))
      const warnings = [
        ...validation.map((w) => w.message),
        ...(live?.state.warnings ?? []).filter(inDoc),
        // The text ends with the verdict, which lists the blockers.
        ...(opts.format === 'text' ? [] : (live?.state.blockers ?? []).filter(inDoc).map((b) => `blocked: ${b}`)),
      ]
      // Offline, validation already expanded the plan (to walk the version skew): the same steps, so reuse them.
      // buildExecutionPlan puts the given warnings before its own, which are all the reused expansion carries.
      const plan = !live && loaded.expanded
        ? { ...loaded.expanded, warnings: [...warnings, ...loaded.expanded.warnings] }
        : buildExecutionPlan(loaded.plan, { warnings, ...(live ? { facts: live.state.planner } : {}) })
      // Validation walked the plan from `from`; the live versions can make a step break the skew policy after all.
      if (live) refuseLiveSkew(loaded, live.state.planner, plan, ctx.stderr)
      // Every format escapes control characters from the plan and the clusters (hook names, versions, node OS names):
      // JSON keeps the values and writes the characters JSON.stringify leaves raw as \u escapes; text and markdown
      // render from an escaped copy, so only their own colour codes reach the terminal.
      const shown = opts.format === 'json' ? plan : escapeDeep(plan)
      const liveFacts = live && opts.format !== 'json' ? escapeDeep(live.state.facts) : live?.state.facts
      const liveGates = live && opts.format !== 'json' ? escapeDeep(live.gates) : live?.gates
      // json comes in pieces, each escaped and written as it is made (planJsonChunks); text and markdown come whole.
      const output: Iterable<string | Buffer> =
        opts.format === 'json' ? escapedPieces(planJsonChunks(plan, live ? { gates: gates!.gateReportJson(live.gates) } : {}))
        : [opts.format === 'markdown' ? renderPlanMarkdown(shown, liveFacts ? { liveSection: `${live!.render.renderLiveStateMarkdown(liveFacts)}\n${gates!.renderGateReportMarkdown(liveGates!)}` } : {})
        : `${liveFacts ? `${live!.render.renderLiveStateText(liveFacts)}\n${gates!.renderGateReportText(liveGates!, { color: ctx.color && !opts.out, verbose: ctx.verbose })}\n` : ''}${renderPlanText(shown, { color: ctx.color && !opts.out })}${live ? `\n${live.verdict.renderLiveVerdictText(escapeDeep(live.state.blockers), liveGates!, { color: ctx.color && !opts.out })}` : ''}`]
      const blocked = Boolean(live && (live.state.blockers.length > 0 || gates!.reportBlocks(live.gates)))
      if (opts.out) {
        try {
          const fd = openSync(opts.out, 'w')
          try {
            for (const piece of output) writeAll(fd, typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece)
          } finally {
            closeSync(fd)
          }
        } catch (err) {
          throw new KupgradeError(`cannot write ${opts.out}: ${(err as Error).message}`, { exitCode: ExitCode.invalid })
        }
        // The document went to a file: the terminal gets the validation warnings and the verdict, once.
        for (const w of validation) ctx.stderr.write(`${formatProblem(w)}\n`)
        ctx.stderr.write(`wrote ${opts.out} (${plan.steps.length} steps)${live ? `; ${blocked ? 'BLOCKED' : 'ready'}` : ''}\n`)
      } else for (const piece of output) ctx.stdout.write(piece)
      setExit(blocked ? ExitCode.blocked : ExitCode.ok)
    })
}

function* escapedPieces(pieces: Iterable<Buffer>): Generator<Buffer> {
  for (const piece of pieces) yield escapeJsonBytes(piece)
}

/** writeSync may write less than asked (writeFileSync loops the same way). */
function writeAll(fd: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at)
}

async function readLive(loaded: ReturnType<typeof loadPlan>, ctx: Parameters<RegisterCommand>[1], acceptNew: boolean, deadlineMs: number) {
  const [facts, render, skew, check, verdict, { SshPool }] = await Promise.all([
    import('../../facts/live.js'), import('../../facts/render.js'), import('../../facts/skew.js'), import('../../gates/check-plan.js'), import('../../report/live-verdict.js'), import('../../transport/ssh/pool.js'),
  ])
  const log = ctx.verbose ? (m: string) => ctx.stderr.write(`${m}\n`) : undefined
  const pool = new SshPool({ env: ctx.env, acceptNew, ...(log ? { debug: log } : {}) })
  try {
    const state = await facts.readLiveState(loaded, { env: ctx.env, transport: pool, deadlineMs, ...(log ? { log } : {}) })
    const gates = await check.checkPlan(loaded, { transport: pool, env: ctx.env, facts: state.facts, deadlineMs, ...(log ? { log } : {}) })
    // Said in the live-state section already (text, markdown): drift, and a run lock someone holds.
    const drift = [
      ...state.facts.clusters.map((c) => skew.fromDisagreement(c)).filter((d) => d && d.kind !== 'same').map((d) => d!.message),
      ...state.facts.clusters.map((c) => facts.runLockWarning(c)).filter((w) => w !== undefined),
    ]
    return { state, gates, render, verdict, drift }
  } finally {
    await pool.close()
  }
}
