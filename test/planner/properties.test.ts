import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { formatProblem } from '../../src/errors.js'
import { parsePlan } from '../../src/plan/load.js'
import type { PlanDocument } from '../../src/plan/schema.js'
import { batchSize } from '../../src/planner/batches.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import { planHops } from '../../src/planner/hops.js'
import type { ExecutionPlan, Step } from '../../src/planner/types.js'
import { renderPlanJson } from '../../src/report/plan-json.js'
import { renderPlanMarkdown } from '../../src/report/plan-markdown.js'
import { renderPlanText } from '../../src/report/plan-text.js'
import { generatePlan, type Generated } from './gen-plan.js'

/**
 * Planner properties over generated plans. A failure prints the seed; `generatePlan(seed)` rebuilds the exact plan.
 *
 * Each property was shown to fail against a deliberately broken planner (in a scratch copy, never committed):
 * workers emitted before the control plane; batches one larger than maxUnavailable; a canary ignoring
 * maxUnavailable; the last worker dropped; no distribution upgrade on the last control-plane node; control-plane
 * nodes cordoned and drained together; the `-2` suffix dropped from repeated actions (duplicate ids); the batch
 * number or the cluster count put in ids; stages reversed; clusters of a stage interleaved; a call counter in a
 * title; the planner changing its input; the text renderer dropping stage-level steps; the json renderer dropping a
 * step field. Each made the matching property below fail, and no mutation went unseen.
 */
const CASES = 320
const BASE_SEED = 0x6b75_7067 // "kupg"
const root = join(import.meta.dirname, '..', '..')

interface Case {
  gen: Generated
  doc: PlanDocument
  plan: ExecutionPlan
}

function load(gen: Generated): PlanDocument {
  const { plan, problems } = parsePlan(`gen-${gen.seed}.yaml`, JSON.stringify(gen.raw, null, 2), { dir: root })
  const errors = problems.filter((p) => p.severity !== 'warning')
  if (!plan || errors.length) throw new Error(`generator made an invalid plan (seed ${gen.seed}):\n${errors.map(formatProblem).join('\n')}`)
  return plan
}

const cases: Case[] = Array.from({ length: CASES }, (_, i) => {
  const gen = generatePlan(BASE_SEED + i)
  const doc = load(gen)
  return { gen, doc, plan: buildExecutionPlan(doc) }
})

/** The passes over one cluster: one per hop, or one OS-only pass, keyed as the planner keys them. */
function passesOf(c: Case, cluster: string): (number | undefined)[] {
  const spec = c.doc.spec.clusters.find((x) => x.name === cluster)!
  const r = planHops(spec.distribution, spec.from, c.doc.spec.target)
  if (!r.ok) throw new Error(r.message)
  return r.hops.length ? r.hops.map((h) => h.index) : c.doc.spec.target.os ? [undefined] : []
}

const stepsOf = (plan: ExecutionPlan, cluster: string, hop: number | undefined): { step: Step; at: number }[] =>
  plan.steps.map((step, at) => ({ step, at })).filter(({ step }) => step.cluster === cluster && step.hop === hop && step.node !== undefined && step.phase !== 'backup')

/** Runs `check` on every case and reports the first seeds that break it (so a failure names a reproducible plan). */
function forAll(check: (c: Case) => string | undefined) {
  const failures: string[] = []
  for (const c of cases) {
    const why = check(c)
    if (why !== undefined) failures.push(`seed ${c.gen.seed}: ${why}`)
    if (failures.length >= 5) break
  }
  expect(failures, failures.join('\n')).toEqual([])
}

// The node upgrade actions per distribution, written out here rather than taken from the drivers.
const UPGRADE_ACTIONS: Record<string, string[]> = {
  k3s: ['backup-files', 'replace-binary', 'restart'],
  k0s: ['backup-files', 'stop-service', 'replace-binary', 'start-service'],
  kubeadm: ['backup-files', 'switch-repo', 'unhold-packages', 'upgrade-package', 'upgrade-control-plane', 'upgrade-package', 'restart', 'hold-packages'],
}
const NODE_FRAME = new Set(['cordon', 'drain', 'os-upgrade', 'reboot', 'wait-ready', 'uncordon'])

describe(`planner properties over ${CASES} generated plans`, () => {
  it('the generator covers the space it claims', () => {
    const all = cases.map((c) => c.gen)
    const clusters = all.flatMap((g) => g.clusters)
    expect(new Set(clusters.map((c) => c.distribution))).toEqual(new Set(['k0s', 'k3s', 'kubeadm']))
    expect(new Set(all.map((g) => g.stages.length))).toEqual(new Set([1, 2, 3, 4]))
    expect(new Set(all.map((g) => g.clusters.length))).toEqual(new Set([1, 2, 3, 4, 5]))
    expect(new Set(clusters.map((c) => c.controlPlanes))).toEqual(new Set([1, 2, 3, 4, 5]))
    expect(Math.max(...clusters.map((c) => c.workers))).toBeGreaterThanOrEqual(38)
    expect(clusters.some((c) => c.workers === 0)).toBe(true)
    expect(new Set(clusters.map((c) => c.minorsBehind))).toEqual(new Set([0, 1, 2]))
    expect(new Set(all.map((g) => g.canary))).toEqual(new Set([0, 1, 2, 3]))
    expect(all.some((g) => typeof g.maxUnavailable === 'string') && all.some((g) => typeof g.maxUnavailable === 'number')).toBe(true)
    expect(all.some((g) => !g.hasKubernetesTarget)).toBe(true)
    const hopCounts = new Set(cases.flatMap((c) => c.plan.stages.flatMap((s) => s.clusters.map((x) => x.hops.length))))
    expect(hopCounts).toEqual(new Set([0, 1, 2]))
  })

  it('no worker step comes before the last control-plane step of its hop (per cluster)', () => {
    forAll((c) => {
      for (const cl of c.doc.spec.clusters) {
        for (const hop of passesOf(c, cl.name)) {
          const steps = stepsOf(c.plan, cl.name, hop)
          const lastCp = Math.max(-1, ...steps.filter((s) => s.step.role === 'control-plane').map((s) => s.at))
          const firstWorker = steps.find((s) => s.step.role === 'worker')
          if (firstWorker && firstWorker.at < lastCp) return `${firstWorker.step.id} (#${firstWorker.at}) before the last control-plane step #${lastCp}`
        }
      }
      return undefined
    })
  })

  it('no worker batch is larger than the batch size from maxUnavailable; the canary batch is at most canary', () => {
    forAll((c) => {
      const mu = c.doc.spec.strategy.workers.maxUnavailable
      const canary = c.doc.spec.strategy.workers.canary
      for (const cl of c.doc.spec.clusters) {
        const workers = cl.nodes.filter((n) => n.role === 'worker').length
        const size = batchSize(mu, workers)
        for (const hop of passesOf(c, cl.name)) {
          const byBatch = new Map<number, Set<string>>()
          for (const { step } of stepsOf(c.plan, cl.name, hop).filter((s) => s.step.role === 'worker')) {
            if (step.batch === undefined) return `${step.id} has no batch`
            byBatch.set(step.batch, (byBatch.get(step.batch) ?? new Set()).add(step.node!))
          }
          for (const [b, nodes] of byBatch) {
            if (nodes.size > size) return `${cl.name} hop ${hop} batch ${b} has ${nodes.size} nodes, more than ${size} (maxUnavailable ${mu} of ${workers})`
            if (b === 1 && canary > 0 && nodes.size > canary) return `${cl.name} canary batch has ${nodes.size} nodes, more than canary ${canary}`
          }
        }
      }
      return undefined
    })
  })

  it('every node is upgraded exactly once per hop: one wait-ready, and the distribution upgrade steps in order', () => {
    forAll((c) => {
      for (const cl of c.doc.spec.clusters) {
        for (const hop of passesOf(c, cl.name)) {
          const steps = stepsOf(c.plan, cl.name, hop)
          for (const node of cl.nodes) {
            const mine = steps.filter((s) => s.step.node === node.name).map((s) => s.step)
            const waits = mine.filter((s) => s.action === 'wait-ready').length
            if (waits !== 1) return `${cl.name}/${node.name} hop ${hop}: ${waits} wait-ready steps`
            const frame = mine.filter((s) => s.action !== 'gate' && s.action !== 'hook').map((s) => s.action)
            const os = c.doc.spec.target.os && hop === (passesOf(c, cl.name)[0]) ? ['os-upgrade', ...(c.doc.spec.target.os.reboot === 'never' ? [] : ['reboot'])] : []
            // The package repository serves one minor: a patch hop stays in it (no switch-repo step).
            const kind = c.plan.stages.flatMap((st) => st.clusters).find((x) => x.name === cl.name)?.hops.find((h) => h.index === hop)?.kind
            const upgrade = hop === undefined ? [] : UPGRADE_ACTIONS[cl.distribution]!.filter((a) => a !== 'switch-repo' || kind === 'minor')
            const want = ['cordon', 'drain', ...os, ...upgrade, 'wait-ready', 'uncordon']
            if (frame.join(',') !== want.join(',')) return `${cl.name}/${node.name} hop ${hop}: ${frame.join(',')} instead of ${want.join(',')}`
          }
          // No step for a node this cluster does not have.
          const known = new Set(cl.nodes.map((n) => n.name))
          const stray = steps.find((s) => !known.has(s.step.node!))
          if (stray) return `${stray.step.id} names a node not in ${cl.name}`
          if (hop !== undefined && cl.distribution === 'kubeadm') {
            const applies = steps.filter((s) => s.step.action === 'upgrade-control-plane' && s.step.params?.command === 'apply')
            if (applies.length !== 1 || applies[0]!.step.role !== 'control-plane') return `${cl.name} hop ${hop}: ${applies.length} kubeadm upgrade apply steps`
          }
        }
        // Exactly one backup per hop, before any node of that hop is touched.
        for (const hop of passesOf(c, cl.name).filter((h) => h !== undefined)) {
          const backups = c.plan.steps.map((s, at) => ({ s, at })).filter(({ s }) => s.cluster === cl.name && s.hop === hop && s.action === 'backup')
          const firstNode = stepsOf(c.plan, cl.name, hop)[0]
          if (backups.length !== 1) return `${cl.name} hop ${hop}: ${backups.length} backups`
          if (firstNode && backups[0]!.at > firstNode.at) return `${cl.name} hop ${hop}: backup after ${firstNode.step.id}`
        }
      }
      return undefined
    })
  })

  it('control-plane nodes go strictly one at a time: their step ranges do not interleave', () => {
    forAll((c) => {
      for (const cl of c.doc.spec.clusters) {
        for (const hop of passesOf(c, cl.name)) {
          const cp = stepsOf(c.plan, cl.name, hop).filter((s) => s.step.role === 'control-plane')
          const order: string[] = []
          for (const { step } of cp) {
            if (order[order.length - 1] !== step.node) {
              if (order.includes(step.node!)) return `${cl.name} hop ${hop}: ${step.node} resumes after ${order[order.length - 1]} started (${step.id})`
              order.push(step.node!)
            }
          }
          // …and nothing else of the cluster runs inside a control-plane node's range.
          for (const node of order) {
            const at = cp.filter((s) => s.step.node === node).map((s) => s.at)
            const inside = c.plan.steps.slice(Math.min(...at), Math.max(...at) + 1).find((s) => s.node !== node)
            if (inside) return `${inside.id} runs inside the range of control-plane node ${node}`
          }
        }
      }
      return undefined
    })
  })

  it('step ids are unique, and stable: the same for the same plan, unchanged by batch size, kept when a cluster is added', () => {
    forAll((c) => {
      const ids = c.plan.steps.map((s) => s.id)
      if (new Set(ids).size !== ids.length) return `duplicate id ${ids.find((id, i) => ids.indexOf(id) !== i)}`
      // The same for the same plan: two builds are equal, ids and all (the determinism property below).
      // Batch size decides batches, not ids: a resumed run whose plan changed maxUnavailable still finds its steps.
      const other = structuredClone(c.doc)
      other.spec.strategy.workers.maxUnavailable = typeof c.doc.spec.strategy.workers.maxUnavailable === 'number' ? '100%' : 1
      const otherIds = buildExecutionPlan(other).steps.map((s) => s.id)
      if ([...otherIds].sort().join('\n') !== [...ids].sort().join('\n')) return 'ids depend on maxUnavailable'
      // Adding a cluster to the last stage keeps every existing id (and its title).
      const grown = structuredClone(c.doc)
      const extra = structuredClone(grown.spec.clusters[0]!)
      extra.name = 'zz-extra'
      extra.nodes = extra.nodes.map((n, i) => ({ ...n, name: `zz-${n.name}`, host: `192.168.0.${i + 1}` }))
      grown.spec.clusters.push(extra)
      grown.spec.stages[grown.spec.stages.length - 1]!.clusters.push('zz-extra')
      const grownSteps = new Map(buildExecutionPlan(grown).steps.map((s) => [s.id, s.title]))
      const lost = c.plan.steps.find((s) => s.stage !== grown.spec.stages[grown.spec.stages.length - 1]!.name && grownSteps.get(s.id) !== s.title)
        ?? c.plan.steps.find((s) => s.cluster !== undefined && grownSteps.get(s.id) !== s.title)
      if (lost) return `adding a cluster changed or removed step ${lost.id}`
      return undefined
    })
  })

  it('stages run in order, and within a stage each cluster is one contiguous block', () => {
    forAll((c) => {
      const stageIndex = new Map(c.doc.spec.stages.map((s, i) => [s.name, i]))
      let last = 0
      for (const s of c.plan.steps) {
        const i = stageIndex.get(s.stage)
        if (i === undefined) return `${s.id} names unknown stage ${s.stage}`
        if (i < last) return `${s.id} (stage ${s.stage}) after a step of a later stage`
        last = i
      }
      const seen: string[] = []
      for (const s of c.plan.steps.filter((x) => x.cluster !== undefined)) {
        if (seen[seen.length - 1] !== s.cluster) {
          if (seen.includes(s.cluster!)) return `cluster ${s.cluster} interleaved with another (${s.id})`
          seen.push(s.cluster!)
        }
      }
      const expected = c.doc.spec.stages.flatMap((s) => s.clusters)
      if (seen.join(',') !== expected.join(',')) return `clusters ran as ${seen.join(',')} instead of ${expected.join(',')}`
      // Per cluster: the lock first, the unlock last, pre-gates before any change to a node.
      for (const name of expected) {
        const mine = c.plan.steps.filter((s) => s.cluster === name)
        if (mine[0]!.action !== 'lock' || mine[mine.length - 1]!.action !== 'unlock') return `${name} does not start with lock and end with unlock`
        const firstNode = mine.findIndex((s) => s.node !== undefined)
        const lastPre = mine.map((s) => s.phase).lastIndexOf('preflight')
        if (firstNode !== -1 && lastPre > firstNode) return `${name}: a preflight step after the first node step`
      }
      return undefined
    })
  })

  it('every format renders every step: json round-trips the steps, markdown and text have one line per step', () => {
    forAll((c) => {
      const json = JSON.parse(renderPlanJson(c.plan)) as { steps: Step[] }
      if (!isDeepStrictEqual(json.steps, JSON.parse(JSON.stringify(c.plan.steps)))) return 'json steps differ from the plan'
      const rows = renderPlanMarkdown(c.plan).split('\n').filter((l) => /^\| \d+ \|/.test(l)).length
      if (rows !== c.plan.steps.length) return `markdown has ${rows} step rows for ${c.plan.steps.length} steps`
      // Text groups nodes with the same steps and folds runs of gates, so it has at most one line per step, and every
      // step is named: its id's tail (after its node, or its stage/cluster) on a step line, its node in a header.
      const text = renderPlanText(c.plan, { color: false })
      const stepLines = text.split('\n').filter((l) => /^\s+[*=-] /.test(l))
      if (stepLines.length > c.plan.steps.length) return `text has ${stepLines.length} step lines for ${c.plan.steps.length} steps`
      const ids = new Set(stepLines.map((l) => l.trim().split(/\s+/)[1]!))
      for (const st of c.plan.steps) {
        const hopId = st.hop !== undefined ? `hop${st.hop}` : 'os'
        const prefixes = [`${st.stage}/${st.cluster}/${hopId}/${st.node}/`, `${st.stage}/${st.cluster}/${hopId}/`, `${st.stage}/${st.cluster}/`, `${st.stage}/`]
        const tail = st.id.slice(prefixes.find((p) => st.id.startsWith(p) && (p.split('/').length < 5 || st.node))!.length).replace(/gate\/[^/]+$/, 'gate/…')
        if (!ids.has(tail)) return `text has no line for ${st.id} (${tail})`
        if (st.node && !text.includes(st.node)) return `text never names node ${st.node}`
      }
      return undefined
    })
  })

  it('is deterministic: two builds are deep-equal and JSON-equal, and the input plan is not changed', () => {
    forAll((c) => {
      // c.plan is this plan's first build; one more is the second.
      const before = JSON.stringify(c.doc)
      const again = buildExecutionPlan(c.doc)
      if (JSON.stringify(again) !== JSON.stringify(c.plan)) return 'JSON differs between two builds'
      if (!isDeepStrictEqual(again, c.plan)) return 'not deep-equal'
      if (JSON.stringify(c.doc) !== before) return 'the planner changed its input'
      return undefined
    })
  })
})
