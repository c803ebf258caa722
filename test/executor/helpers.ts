import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { expect } from 'vitest'
import { parse, stringify } from 'yaml'
import { Lab } from '../../src/lab/lab.js'
import { normalizeTopology, type TopologyInput } from '../../src/lab/topology.js'
import { runCli } from '../helpers/run-cli.js'
import { KUBECTL } from '../lab/helpers.js'

/**
 * Executor tests on a real lab fleet: API servers on `${net}.1..`, nodes on `${net}.11..` (one /24 per test file,
 * inside the test's own network namespace), fast simulated delays, and the plan `lab up` writes, adjusted per test.
 */
export type ClusterShape = {
  name: string; stage?: string; distribution: 'k3s' | 'k0s' | 'kubeadm'; version?: string; controlPlanes: number; workers: number
  /** k0s: the control-plane nodes (1-based) installed with --enable-worker (Nodes); the others are plain controllers. */
  enableWorker?: number[]
  /** k3s: `sqlite` = the one server keeps its data in SQLite (no --cluster-init); default embedded etcd. */
  datastore?: 'etcd' | 'sqlite'
}

export function topology(net: string, clusters: ClusterShape[], mirror = ['v1.29.6', 'v1.30.4']): TopologyInput {
  let nodeIx = 10
  return {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'LabTopology',
    metadata: { name: 'exec' },
    spec: {
      mirror,
      timing: { serviceRestart: '100ms', readyDelay: '200ms', reboot: '300ms', drainEvictionDelay: '50ms' },
      clusters: clusters.map((c, ci) => ({
        name: c.name,
        stage: c.stage ?? c.name,
        distribution: c.distribution,
        version: c.version ?? mirror[0]!,
        apiAddress: `${net}.${ci + 1}`,
        ...(c.datastore ? { datastore: c.datastore } : {}),
        nodes: [
          ...Array.from({ length: c.controlPlanes }, (_, i) => ({
            name: `${c.name}-cp-${i + 1}`, role: 'control-plane' as const, address: `${net}.${++nodeIx}`, os: c.distribution === 'kubeadm' ? 'debian-12' as const : 'ubuntu-22.04' as const,
            ...(c.enableWorker?.includes(i + 1) ? { enableWorker: true } : {}),
          })),
          ...Array.from({ length: c.workers }, (_, i) => ({ name: `${c.name}-w-${i + 1}`, role: 'worker' as const, address: `${net}.${++nodeIx}`, os: c.distribution === 'kubeadm' ? 'debian-12' as const : 'ubuntu-22.04' as const })),
        ],
        workloads: { deployments: [{ name: 'web', namespace: 'default', replicas: 2, requests: { cpu: '100m', memory: '128Mi' }, pdb: { minAvailable: 1 } }], daemonSets: [], coredns: { replicas: 1 } },
      })),
    },
  }
}

export interface ExecLab {
  lab: Lab
  dir: string
  plan: string
  env: NodeJS.ProcessEnv
  /** Edits plan.yaml (a parsed document) in place. */
  editPlan(edit: (doc: any) => void): Promise<void>
  cli(args: string[]): Promise<{ code: number; out: string; err: string }>
  stop(): Promise<void>
}

export async function startExecLab(t: TopologyInput, o: { nodeUsers?: { name: string; sudo: boolean }[] } = {}): Promise<ExecLab> {
  const dir = await mkdtemp(join(tmpdir(), 'kupgrade-exec-'))
  const lab = new Lab({ topology: normalizeTopology(t), dir, ...(o.nodeUsers ? { nodeUsers: o.nodeUsers } : {}) })
  await lab.start()
  const plan = join(dir, 'plan.yaml')
  const env = { PATH: process.env.PATH, HOME: dir, KUPGRADE_KUBECTL: KUBECTL, NO_COLOR: '1' }
  return {
    lab, dir, plan, env,
    editPlan: async (edit) => {
      const doc = parse(await readFile(plan, 'utf8'))
      edit(doc)
      await writeFile(plan, stringify(doc))
    },
    cli: (args) => runCli(args, { env, cwd: dir }),
    stop: async () => {
      await lab.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/**
 * Two k3s clusters, `stg` in stage staging and `prd` in stage production (whose approval is required), staging
 * soaking `soak` before it: the staged-promotion tests' fleet.
 */
export async function startStagedLab(net: string, o: { soak: string; productionWorkers: number }): Promise<ExecLab> {
  const l = await startExecLab(topology(net, [
    { name: 'stg', stage: 'staging', distribution: 'k3s', controlPlanes: 1, workers: 1 },
    { name: 'prd', stage: 'production', distribution: 'k3s', controlPlanes: 1, workers: o.productionWorkers },
  ]))
  await l.editPlan((d) => {
    d.spec.stages[0].soak = o.soak
    d.spec.stages[1].approval = 'required'
  })
  return l
}

/** The rollback tests' plan: onFailure rollback, and a failed node found by a short wait for Ready after its change. */
export const rollbackOnFailure = (maxFailedNodes?: number) => recoverOnFailure('rollback', maxFailedNodes)

/** The same with onFailure rollback or rebuild. */
export const recoverOnFailure = (how: 'rollback' | 'rebuild', maxFailedNodes?: number) => (d: any): void => {
  d.spec.strategy.onFailure = how
  if (maxFailedNodes !== undefined) d.spec.strategy.maxFailedNodes = maxFailedNodes
  d.spec.gates = { ...d.spec.gates, afterNode: [{ 'nodes-ready': { timeout: '4s' } }] }
}

/**
 * The plan skips the release-source pre-gate: for a test of a download that fails once the run is under way (the
 * lab's upgrade-command-fails fault fails every download of the node's, the gate's reads of the release too).
 */
export const downloadFailsMidRun = (d: any): void => {
  d.spec.gates = { ...d.spec.gates, skip: [...(d.spec.gates?.skip ?? []), { gate: 'release-source', reason: 'a download that fails once the run is under way is the test' }] }
}

/** The kubeadm cluster `kh` (three stacked-etcd control-plane nodes, two workers) with its plan set to rebuild a failed node. */
export async function startKubeadmRebuildLab(net: string): Promise<ExecLab> {
  const l = await startExecLab(topology(net, [{ name: 'kh', distribution: 'kubeadm', controlPlanes: 3, workers: 2 }]))
  await l.editPlan(recoverOnFailure('rebuild', 1))
  return l
}

/** A file of a lab node's machine, by its path under the node's root. */
export const nodeFile = (l: Pick<ExecLab, 'dir'>, cluster: string, node: string, rel: string): string => readFileSync(join(l.dir, 'nodes', cluster, node, rel), 'utf8')

/** The members of a cluster's simulated etcd (lab/etcd-cluster/members), by name, sorted. */
export const etcdSimMembers = (l: Pick<ExecLab, 'dir'>, cluster: string): string[] =>
  readFileSync(join(l.dir, 'etcd-sim', cluster, 'members'), 'utf8').trim().split('\n').map((m) => m.split('\t')[0]!).sort()

/** NDJSON events from `--output json`. */
export const events = (out: string): any[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))

export interface KilledCli { code: number | null; signal: NodeJS.Signals | null; out: string; err: string; killed: boolean }

/**
 * Runs the built CLI (dist: npm run build first) as a child process with `--output json`-style NDJSON on stdout, and
 * kills it with SIGKILL `ms` after the first event for which `killAfter` returns a number of ms (a real process,
 * killed mid-write, as an operator's reboot or OOM would). Without a kill it runs to its end.
 */
export function cliKillable(l: ExecLab, args: string[], killAfter: (event: any) => number | undefined = () => undefined): Promise<KilledCli> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [resolve('bin/kupgrade.js'), ...args], { cwd: l.dir, env: { ...l.env, CI: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let parsed = 0
    let killed = false
    let timer: NodeJS.Timeout | undefined
    p.stdout.on('data', (d) => {
      out += d
      for (let nl = out.indexOf('\n', parsed); nl >= 0 && !timer; nl = out.indexOf('\n', parsed)) {
        const line = out.slice(parsed, nl)
        parsed = nl + 1
        if (!line.startsWith('{')) continue
        const ms = killAfter(JSON.parse(line))
        if (ms !== undefined) {
          timer = setTimeout(() => {
            killed = true
            p.kill('SIGKILL')
          }, ms)
        }
      }
    })
    p.stderr.on('data', (d) => (err += d))
    p.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer)
      done({ code, signal, out, err, killed: killed && signal === 'SIGKILL' })
    })
  })
}

/**
 * The backups a run copied off its nodes (`.kupgrade/backups/index.jsonl` next to the plan), every file checked against
 * the lab's own copy on the node (its folder under the lab directory) and against the index's sha256 and size; the
 * copies are 0600. Returns the index entries; with `run`, that run's only (the node holds the newest run's backup).
 */
export function expectBackupsCopied(l: ExecLab, cluster: string, run?: string): any[] {
  const planDir = dirname(l.plan)
  const index = readFileSync(join(planDir, '.kupgrade/backups/index.jsonl'), 'utf8').trim().split('\n').map((x) => JSON.parse(x)).filter((e) => run === undefined || e.run === run)
  for (const entry of index) {
    expect(entry.files.length, `${entry.node}: files copied`).toBeGreaterThan(0)
    for (const f of entry.files as { path: string; remote: string; sha256: string; bytes: number; mode: string }[]) {
      const local = readFileSync(join(planDir, f.path))
      expect(createHash('sha256').update(local).digest('hex'), f.path).toBe(f.sha256)
      expect(local.length, f.path).toBe(f.bytes)
      expect(local.equals(readFileSync(join(l.dir, 'nodes', cluster, entry.node, f.remote))), `${f.path} is the node's ${f.remote}`).toBe(true)
      expect(statSync(join(planDir, f.path)).mode & 0o777, f.path).toBe(0o600)
      expect(f.mode, f.path).toBe((statSync(join(l.dir, 'nodes', cluster, entry.node, f.remote)).mode & 0o777).toString(8))
    }
  }
  return index
}

/** Where a lab's runs are journaled (`.kupgrade/runs` beside its plan). */
export const runsDir = (l: ExecLab): string => join(l.dir, '.kupgrade', 'runs')
/** The ids of the runs journaled there (each a folder with a journal.jsonl). */
export const runDirs = (l: ExecLab): string[] => (existsSync(runsDir(l)) ? readdirSync(runsDir(l)).filter((d) => existsSync(join(runsDir(l), d, 'journal.jsonl'))) : [])
