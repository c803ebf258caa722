import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { KupgradeError } from '../errors.js'
import { serveControl } from './control.js'
import { Lab } from './lab.js'
import { controlSocket, pidAlive, readState, removeState, writeState, type LabStateFile } from './state-file.js'
import type { Topology } from './topology.js'
import { kubeletVersion } from './versions.js'

/**
 * Running a lab as a long-lived process: foreground (until SIGINT/SIGTERM or `lab down`) or detached (a child
 * process of the same CLI, its output in DIR/lab.log, its pid in DIR/lab.pid).
 */
export async function runForeground(topology: Topology, dir: string, log: (line: string) => void, opts: { apiOnly?: boolean } = {}): Promise<void> {
  const existing = await readState(dir)
  if (existing && pidAlive(existing.pid) && existing.pid !== process.pid) {
    throw new KupgradeError(`a lab is already running in ${dir} (pid ${existing.pid})`, { hint: 'stop it with `kupgrade lab down`, or use another --dir' })
  }
  const lab = new Lab({ topology, dir, log, nodes: !opts.apiOnly })
  await lab.start()
  let finish!: () => void
  const done = new Promise<void>((r) => { finish = r })
  const socket = controlSocket(dir)
  let control: Awaited<ReturnType<typeof serveControl>>
  let state: LabStateFile
  // Before lab.json exists: whoever sees it may interrupt the lab at once, and that must stop it cleanly, not kill it.
  const onSignal = () => finish()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    control = await serveControl(lab, socket, () => finish())
    state = describe(lab, dir, socket)
    await writeState(state)
  } catch (err) {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await lab.stop()
    throw err
  }
  log(summary(state, lab))
  await done
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  log('stopping the lab…')
  await new Promise<void>((r) => control.close(() => r()))
  await lab.stop()
  await rm(socket, { force: true })
  await removeState(dir)
  await rm(join(dir, 'lab.pid'), { force: true })
  log('lab stopped')
}

export function describe(lab: Lab, dir: string, socket: string): LabStateFile {
  const t = lab.topology
  return {
    name: t.name, pid: process.pid, dir, control: socket, startedAt: new Date().toISOString(),
    kubeconfig: join(dir, 'kubeconfig'), plan: join(dir, 'plan.yaml'), knownHosts: join(dir, 'known_hosts'), identityFile: join(dir, 'id_ed25519'),
    nodesHaveSsh: lab.nodesAvailable,
    clusters: t.clusters.map((c) => ({
      name: c.name, distribution: c.distribution, api: `https://${c.apiAddress}:${c.apiPort}`, context: c.name,
      nodes: c.nodes.map((n) => ({ name: n.name, role: n.role, host: n.address, port: n.sshPort })),
    })),
  }
}

export function summary(s: LabStateFile, lab?: Lab): string {
  const lines = [`lab "${s.name}" is up (pid ${s.pid}): ${s.clusters.length} clusters, ${s.clusters.reduce((n, c) => n + c.nodes.length, 0)} nodes`]
  for (const c of s.clusters) {
    const version = lab ? kubeletVersion(c.distribution as 'k3s', lab.clusters.get(c.name)!.model.apiServerVersion) : ''
    lines.push(`  ${c.name.padEnd(12)} ${c.distribution.padEnd(8)} ${version.padEnd(14)} ${c.api}  ${c.nodes.length} nodes, ssh ${c.nodes[0]!.host}…:${c.nodes[0]!.port}`)
  }
  const first = s.clusters[0]!
  lines.push(
    `files in ${s.dir}:`,
    `  kubectl:  KUBECONFIG=${s.kubeconfig} kubectl --context ${first.name} get nodes`,
    `  plan:     kupgrade plan ${s.plan}`,
    s.nodesHaveSsh
      ? `  ssh:      ssh -i ${s.identityFile} -o UserKnownHostsFile=${s.knownHosts} -p ${first.nodes[0]!.port} root@${first.nodes[0]!.host}`
      : '  ssh:      none (--api-only: the nodes have no SSH servers)',
    `  faults:   kupgrade lab fault add ${first.name}/${first.nodes[0]!.name} disk-full --dir ${s.dir}`,
  )
  return lines.join('\n')
}

/** The CLI launcher next to this build (bin/kupgrade.js), so a detached lab runs the same kupgrade. */
const launcher = (): string => fileURLToPath(new URL('../../bin/kupgrade.js', import.meta.url))

export async function runDetached(args: { dir: string; topologyFile?: string; apiOnly?: boolean; timeoutMs?: number }): Promise<LabStateFile> {
  const existing = await readState(args.dir)
  if (existing && pidAlive(existing.pid)) {
    throw new KupgradeError(`a lab is already running in ${args.dir} (pid ${existing.pid})`, { hint: 'stop it with `kupgrade lab down`, or use another --dir' })
  }
  await removeState(args.dir)
  mkdirSync(args.dir, { recursive: true })
  const logFile = join(args.dir, 'lab.log')
  const out = openSync(logFile, 'w')
  const argv = [launcher(), 'lab', 'up', '--dir', args.dir, ...(args.topologyFile ? ['--topology', args.topologyFile] : []), ...(args.apiOnly ? ['--api-only'] : [])]
  const child = spawn(process.execPath, argv, { detached: true, stdio: ['ignore', out, out] })
  closeSync(out)
  let exited: number | null | undefined
  child.on('exit', (code) => { exited = code })
  child.unref()
  const deadline = Date.now() + (args.timeoutMs ?? 60_000)
  while (Date.now() < deadline) {
    const s = await readState(args.dir).catch(() => undefined)
    if (s && s.pid === child.pid) {
      await writeFile(join(args.dir, 'lab.pid'), `${child.pid}\n`)
      return s
    }
    if (exited !== undefined) break
    await new Promise((r) => setTimeout(r, 100))
  }
  if (exited === undefined && child.pid) process.kill(child.pid, 'SIGTERM')
  const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-8).join('\n')
  throw new KupgradeError(`the lab did not start${exited !== undefined ? ` (exit code ${exited})` : ' within the time limit'}${tail ? `:\n${tail}` : ''}`, { hint: `full log: ${logFile}` })
}
