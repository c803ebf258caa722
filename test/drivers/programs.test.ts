import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Check, Command, StepProgram } from '../../src/drivers/program.js'
import { hasProgram, programFor } from '../../src/drivers/registry.js'
import type { DriverNodeFacts } from '../../src/drivers/types.js'
import { loadPlan, parsePlan } from '../../src/plan/load.js'
import type { Distribution } from '../../src/plan/versions.js'
import { buildExecutionPlan } from '../../src/planner/build.js'
import type { ExecutionPlan, Step } from '../../src/planner/types.js'
import { generatePlan } from '../planner/gen-plan.js'

/**
 * Every step the planner emits either belongs to the executor (approval, lock, gate …) or has a program in the
 * module that owns its action; the program's title is the step's title (plan cannot drift from what runs); run and
 * undo commands are argv (quoted by the transport) or scripts in which every value from the plan is single-quoted;
 * verify checks are read-only.
 */
const root = join(import.meta.dirname, '..', '..')
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => join(root, 'examples', f))

function plansToCheck(): { name: string; plan: ExecutionPlan }[] {
  const out = examples.map((f) => ({ name: f, plan: buildExecutionPlan(loadPlan(f).plan) }))
  for (let seed = 1; seed <= 10; seed++) {
    const gen = generatePlan(seed)
    const r = parsePlan(`gen-${seed}.yaml`, JSON.stringify(gen.raw), { dir: root })
    if (r.plan) out.push({ name: `generated seed ${seed}`, plan: buildExecutionPlan(r.plan) })
  }
  return out
}
const distOf = (plan: ExecutionPlan, step: Step): Distribution =>
  plan.stages.flatMap((s) => s.clusters).find((c) => c.name === step.cluster)!.distribution as Distribution

const FACTS: (DriverNodeFacts | undefined)[] = [undefined, { packageManager: 'apt' }, { packageManager: 'dnf' }, { packageManager: 'flatcar' }]

const commandsOf = (p: StepProgram): Command[] => [...p.run, ...('run' in p.undo ? p.undo.run : [])]
const checksOf = (p: StepProgram): Check[] => [...p.verify, ...('run' in p.undo ? (p.undo.verify ?? []) : [])]

/** Commands that only read, as a verify check may run them (for real, in dry-runs, and retried). */
const READ_ONLY: ((argv: readonly string[]) => boolean)[] = [
  (a) => a[0] === 'grep' || a[0] === 'test',
  (a) => a[0] === 'sha256sum' && a.includes('--check'),
  (a) => /(^|\/)(k3s|kubelet)$/.test(a[0]!) && a[1] === '--version',
  (a) => /(^|\/)(k0s)$/.test(a[0]!) && (a[1] === 'version' || a[1] === 'status'),
  (a) => /(^|\/)kubeadm$/.test(a[0]!) && a[1] === 'version',
  (a) => a[0] === 'kubectl' && a[1] === 'version' && a.includes('--client'),
  (a) => a[0] === 'systemctl' && a[1] === 'is-active',
  (a) => a[0] === 'apt-mark' && a[1] === 'showhold',
  (a) => a[0] === 'needs-restarting' && a[1] === '-r',
  (a) => a[0] === 'update_engine_client' && a[1] === '-status',
]
/** Shell words that change something; a check script must contain none of them. */
const WRITES = /(^|[\s;&|(])(rm|mv|cp|install|mkdir|tee|sed|apt-get|dnf|yum|systemctl\s+(restart|start|stop|reboot)|reboot|curl|k3s\s+etcd|k0s\s+(stop|start|backup))(?=[\s;&|)]|$)|>(?!\/dev\/null|&)/

describe('every planned step has a program, rendered from the same commands', () => {
  const plans = plansToCheck()

  it('programs exist for every action the planner emits, for every kind of node facts', () => {
    const seen = new Set<string>()
    for (const { name, plan } of plans) {
      for (const step of plan.steps) {
        if (!hasProgram(step.action)) continue
        seen.add(step.action)
        for (const facts of FACTS) {
          if (facts?.packageManager === 'flatcar' && /package|repo/.test(step.action)) continue
          const p = programFor(step, { distribution: distOf(plan, step), ...(facts ? { node: facts } : {}) })
          expect(p.run.length + (p.wait?.length ?? 0), `${name}: ${step.id} does nothing`).toBeGreaterThan(step.action.includes('hold') && facts?.packageManager === 'dnf' ? -1 : 0)
          if (step.undo && !('irreversible' in step.undo)) expect('run' in p.undo, `${name}: ${step.id} undo`).toBe(true)
        }
      }
    }
    for (const a of ['cordon', 'drain', 'uncordon', 'wait-ready', 'os-upgrade', 'reboot', 'backup', 'backup-files', 'replace-binary', 'restart', 'stop-service', 'start-service', 'switch-repo', 'unhold-packages', 'upgrade-package', 'upgrade-control-plane', 'hold-packages']) {
      expect(seen, `no plan exercised ${a}`).toContain(a)
    }
  })

  it('the programs that restore from a hop\'s backup say so (the executor puts a lost backup back first), and no other', () => {
    const readers = new Set<string>()
    // No example has a kubeadm cluster with one control-plane node, whose restore is the undo of upgrade apply.
    const single = parsePlan('single.yaml', JSON.stringify({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'single' },
      spec: {
        target: { kubernetes: 'v1.30.4' }, stages: [{ name: 's', clusters: ['c'] }],
        clusters: [{ name: 'c', distribution: 'kubeadm', from: 'v1.29.6', apiEndpoint: 'https://10.0.0.9:6443', nodes: [{ name: 'cp', host: '10.0.0.1', role: 'control-plane' }, { name: 'w', host: '10.0.0.2', role: 'worker' }] }],
      },
    }), { dir: root }).plan!
    for (const { name, plan } of [...plans, { name: 'single kubeadm control plane', plan: buildExecutionPlan(single) }]) {
      for (const step of plan.steps) {
        if (!hasProgram(step.action)) continue
        const p = programFor(step, { distribution: distOf(plan, step) })
        const undo = 'run' in p.undo ? p.undo : undefined
        const restores = step.undo !== undefined && 'action' in step.undo && ['restore-datastore', 'rejoin-datastore'].includes(step.undo.action)
        expect(undo?.readsBackup, `${name}: ${step.id} undo`).toEqual(restores ? { release: (step.undo as { params: { release: string } }).params.release } : undefined)
        if (restores) readers.add(`${distOf(plan, step)} ${(step.undo as { action: string }).action}`)
        expect(p.readsBackup, `${name}: ${step.id}`).toEqual(['restore-datastore', 'rejoin-datastore'].includes(step.action) ? expect.anything() : undefined)
      }
      for (const r of plan.stages.flatMap((s) => s.clusters).flatMap((c) => c.restore ?? [])) {
        if (!r.automatic) continue
        for (const step of r.steps.filter((s) => s.action === 'restore-datastore' || s.action === 'rejoin-datastore')) {
          expect(programFor(step, { distribution: distOf(plan, step) }).readsBackup, `${name}: ${step.id}`).toEqual({ release: (step.params as { release: string }).release })
          readers.add(`${distOf(plan, step)} ${step.action}`)
        }
      }
    }
    expect([...readers].sort()).toEqual(['k0s rejoin-datastore', 'k0s restore-datastore', 'k3s rejoin-datastore', 'k3s restore-datastore', 'kubeadm restore-datastore'])
  })

  it("a kubeadm worker's rollback restarts its kubelet again once its configuration is back (the package went back first)", () => {
    const plan = plans.find((p) => p.plan.steps.some((s) => s.action === 'upgrade-control-plane' && s.role === 'worker' && distOf(p.plan, s) === 'kubeadm'))!.plan
    const step = plan.steps.find((s) => s.action === 'upgrade-control-plane' && s.role === 'worker' && distOf(plan, s) === 'kubeadm')!
    const undo = programFor(step, { distribution: 'kubeadm' }).undo
    if (!('run' in undo)) throw new Error(`${step.id}: no undo`)
    expect(undo.title).toMatch(/^restore \/var\/lib\/kubelet\/config\.yaml from \S+; systemctl try-restart kubelet$/)
    const argv = undo.run.map((c) => (c.on === 'kubectl' ? c.args : Array.isArray(c.command) ? c.command : ['script']))
    expect(argv.at(-2)).toEqual(['script'])
    expect(argv.at(-1)).toEqual(['systemctl', 'try-restart', 'kubelet'])
  })

  it('a kubeadm control-plane upgrade can tell, after it failed, whether it left the manifests as kept before the hop; a worker\'s has nothing to tell', () => {
    const plan = plans.find((p) => p.plan.steps.some((s) => s.action === 'upgrade-control-plane' && s.role === 'control-plane' && distOf(p.plan, s) === 'kubeadm'))!.plan
    const steps = plan.steps.filter((s) => s.action === 'upgrade-control-plane' && distOf(plan, s) === 'kubeadm')
    for (const step of steps.filter((s) => s.role === 'control-plane')) {
      const dir = step.undo !== undefined && 'action' in step.undo && 'dir' in step.undo.params ? step.undo.params.dir : undefined
      const untouched = programFor(step, { distribution: 'kubeadm' }).untouched
      expect(untouched?.map((c) => (c.read.on === 'node' ? c.read.command : c.read.args)), step.id).toEqual([['diff', '-r', '-q', `${dir}/files/etc/kubernetes/manifests`, '/etc/kubernetes/manifests']])
      expect(untouched![0]!.expect).toEqual({ exitCode: 0 })
    }
    for (const step of steps.filter((s) => s.role === 'worker')) expect(programFor(step, { distribution: 'kubeadm' }).untouched, step.id).toBeUndefined()
  })

  it("a k3s hop's fresh backup prunes the earlier runs' snapshots of the hop; one taken after the control plane moved keeps them", () => {
    const plan = plans.find((p) => p.plan.steps.some((s) => s.action === 'backup' && distOf(p.plan, s) === 'k3s'))!.plan
    const fresh = plan.steps.find((s) => s.action === 'backup' && distOf(plan, s) === 'k3s')!
    expect(fresh.fresh).toBe(true)
    const scriptOf = (s: Step) => programFor(s, { distribution: 'k3s' }).run.map((c) => (c.on === 'node' && 'script' in c.command ? c.command.script : '')).join('\n')
    if (fresh.action !== 'backup' || fresh.params.kind !== 'k3s') throw new Error('not a k3s backup')
    const { name, dir } = fresh.params
    // The prune comes after the checksum list is written: a save that failed removes nothing.
    const lines = scriptOf(fresh).split('\n')
    const listed = lines.findIndex((l) => l.includes('> SHA256SUMS.new'))
    const pruned = lines.findIndex((l) => l.trim().startsWith('k3s etcd-snapshot prune '))
    expect(listed).toBeGreaterThan(0)
    expect(pruned).toBeGreaterThan(listed)
    expect(lines[pruned]).toContain(`prune --name ${name} --etcd-snapshot-dir ${dir}/etcd-snapshot --etcd-snapshot-retention 1 ||`)
    expect(fresh.title).toContain(' then k3s etcd-snapshot prune to this one ')
    const { fresh: _, ...moved } = fresh
    expect(scriptOf(moved as Step)).not.toContain('prune')
    expect(programFor(moved as Step, { distribution: 'k3s' }).title).not.toContain('prune')
  })

  it("a step's title is its program's title (offline)", () => {
    for (const { plan } of plans.slice(0, 10)) {
      for (const step of plan.steps.filter((s) => hasProgram(s.action))) expect(step.title).toBe(programFor(step, { distribution: distOf(plan, step) }).title)
    }
  })

  it('run and undo commands are argv or scripts; verify checks only read', () => {
    for (const { plan } of plans) {
      for (const step of plan.steps.filter((s) => hasProgram(s.action))) {
        for (const facts of FACTS) {
          if (facts?.packageManager === 'flatcar' && /package|repo/.test(step.action)) continue
          const p = programFor(step, { distribution: distOf(plan, step), ...(facts ? { node: facts } : {}) })
          for (const c of commandsOf(p)) {
            if (c.on === 'kubectl') expect(Array.isArray(c.args)).toBe(true)
            else expect(Array.isArray(c.command) || typeof (c.command as { script: string }).script === 'string').toBe(true)
            expect(c.why.length).toBeGreaterThan(3)
          }
          for (const ch of checksOf(p)) {
            const r = ch.read
            if (r.on === 'kubectl') {
              expect(r.args[0], `${step.id}: ${ch.describe}`).toBe('get')
              continue
            }
            const argv = r.command as readonly string[]
            expect(Array.isArray(argv), `${step.id}: a check is an argv`).toBe(true)
            if (argv[0] === 'sh') expect(argv[2], `${step.id}: ${ch.describe}`).not.toMatch(WRITES)
            else expect(READ_ONLY.some((ok) => ok(argv)), `${step.id}: ${argv.join(' ')} is not a known read`).toBe(true)
          }
        }
      }
    }
  })
})

describe('values from the plan reach scripts single-quoted', () => {
  const hostile = "/srv/k3s $(touch /tmp/pwned) `id` ; rm -rf / 'x'"
  const doc = (install: { path?: string; mirror?: string }) => {
    const r = parsePlan('hostile.yaml', JSON.stringify({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'h' },
      spec: {
        target: { kubernetes: 'v1.30.4', os: { packages: ['openssl', "lib'; reboot"] } }, stages: [{ name: 's', clusters: ['c'] }],
        clusters: [{ name: 'c', distribution: 'k3s', from: 'v1.29.2+k3s1', apiEndpoint: 'https://10.0.0.1:6443', install, nodes: [{ name: 'cp', host: '10.0.0.2', role: 'control-plane' }, { name: 'w', host: '10.0.0.3', role: 'worker' }] }],
      },
    }), { dir: root })
    if (!r.plan) throw new Error(r.problems.map((p) => p.message).join('\n'))
    return buildExecutionPlan(r.plan)
  }
  /** What the shell sees outside single quotes: a hostile value must never be there. */
  const unquoted = (script: string) => script.replace(/'[^']*'/g, "''")

  it.each([{ path: hostile }, { mirror: 'https://mirror.example/k3s%20$(id)' }])('install %o', (install) => {
    const plan = doc(install)
    let scripts = 0
    for (const step of plan.steps.filter((s) => hasProgram(s.action))) {
      for (const facts of FACTS.slice(0, 3)) {
        const p = programFor(step, { distribution: 'k3s', ...(facts ? { node: facts } : {}) })
        for (const c of commandsOf(p)) {
          if (c.on !== 'node' || Array.isArray(c.command)) continue
          scripts++
          const outside = unquoted((c.command as { script: string }).script)
          expect(outside).not.toContain('touch /tmp/pwned')
          expect(outside).not.toContain('$(id)')
          expect(outside).not.toContain('reboot"')
        }
      }
    }
    expect(scripts).toBeGreaterThan(0)
  })
})

describe('reboot program', () => {
  const reboot = (): Step => {
    const r = parsePlan('os.yaml', JSON.stringify({
      apiVersion: 'kupgrade.dev/v1alpha1', kind: 'UpgradePlan', metadata: { name: 'os' },
      spec: {
        target: { kubernetes: 'v1.30.4', os: { packages: 'all', reboot: 'if-required' } },
        stages: [{ name: 's', clusters: ['c'] }],
        clusters: [{ name: 'c', distribution: 'k0s', from: 'v1.29.6+k0s.0', apiEndpoint: 'https://127.0.0.1:6443', nodes: [{ name: 'ctrl', host: '127.0.0.1', role: 'control-plane' }] }],
      },
    }))
    return buildExecutionPlan(r.plan!).steps.find((s) => s.action === 'reboot')!
  }

  it('waits for SSH on a new boot, then for the Node Ready on that boot; a machine without a kubelet has no Node to wait for', () => {
    const step = reboot()
    expect(programFor(step, { distribution: 'k0s', node: { packageManager: 'apt' } }).wait).toEqual([
      { kind: 'ssh-back', newBoot: true, timeoutMs: 600_000 },
      { kind: 'node-ready', node: 'ctrl', kubeletVersion: '', timeoutMs: 600_000, newBoot: true },
    ])
    expect(programFor(step, { distribution: 'k0s', node: { packageManager: 'apt', kubernetesNode: false } }).wait).toEqual([{ kind: 'ssh-back', newBoot: true, timeoutMs: 600_000 }])
  })
})
