import type { Command } from 'commander'
import { resolve } from 'node:path'
import { ExitCode, UsageError } from '../../errors.js'
import { controlRequest } from '../../lab/control.js'
import { formatEvent, parseSince } from '../../lab/recorder/format.js'
import type { LabEvent } from '../../lab/recorder/types.js'
import { parseDuration } from '../../util/duration.js'
import { defaultTopology } from '../../lab/default-topology.js'
import { FAULT_NAMES, FAULTS, isFaultName, parseFaultTarget } from '../../lab/faults.js'
import type { LabStatus } from '../../lab/lab.js'
import { runDetached, runForeground, summary } from '../../lab/run.js'
import { DEFAULT_LAB_DIR, labDir, pidAlive, removeState, runningLabFor } from '../../lab/state-file.js'
import { formatStatus } from '../../lab/status-table.js'
import { loadTopology, normalizeTopology } from '../../lab/topology.js'
import type { RegisterCommand } from './index.js'

/**
 * `kupgrade lab up|down|status|fault`: the simulated fleet (brief §7). `up` runs in the foreground until interrupted,
 * or with --detach in the background; the others talk to the running lab through its control socket (lab.json).
 */
export const register: RegisterCommand = (program, ctx, setExit) => {
  const out = (s: string) => ctx.stdout.write(s.endsWith('\n') ? s : `${s}\n`)
  const lab = program
    .command('lab')
    .description('run a simulated fleet (HTTPS API servers + SSH nodes on loopback) to rehearse plans against')
    .addHelpText('after', `
Examples:
  kupgrade lab up --detach                       start the demo fleet in .kupgrade/lab
  kupgrade lab up --topology examples/lab/demo.yaml --dir /tmp/lab --detach
  kupgrade lab status
  kupgrade lab fault add production/prod-worker-1 node-not-ready-after-upgrade
  kupgrade lab events --since 10m
  kupgrade lab down`)

  // (No commander default: without --dir, the commands on a running lab also find it in the current directory.)
  const dirOption = (c: Command, running = true) => c.option('--dir <dir>', `lab directory (kubeconfig, plan.yaml, lab.json, …) (default: ${DEFAULT_LAB_DIR}${running ? ', or the current directory when the running lab is there' : ''})`)

  dirOption(lab.command('up'), false)
    .description('start the lab; writes DIR/kubeconfig, DIR/known_hosts, DIR/id_ed25519, DIR/plan.yaml and DIR/lab.json')
    .option('--topology <file>', 'topology file (kind: LabTopology); default: the demo fleet (2 clusters, 8 nodes)')
    .option('--detach', 'run in the background (pid in DIR/lab.pid, output in DIR/lab.log) and return once ready')
    .option('--api-only', 'serve only the clusters\' API servers, without SSH nodes')
    .action(async (o: { dir?: string; topology?: string; detach?: boolean; apiOnly?: boolean }) => {
      const dir = labDir(ctx.cwd, o.dir)
      const topologyFile = o.topology ? resolve(ctx.cwd, o.topology) : undefined
      if (o.detach) {
        // Validate here so problems print as file:line:col on this terminal, not in the background lab's log.
        if (topologyFile) await loadTopology(topologyFile)
        const s = await runDetached({ dir, topologyFile, apiOnly: o.apiOnly })
        out(summary(s))
        out(`stop it with: kupgrade lab down --dir ${dir}`)
        return
      }
      const topology = topologyFile ? await loadTopology(topologyFile) : normalizeTopology(defaultTopology())
      await runForeground(topology, dir, out, { apiOnly: o.apiOnly })
    })

  dirOption(lab.command('down'))
    .description('stop the running lab')
    .action(async (o: { dir?: string }) => {
      const { dir, state: s } = await runningLabFor(ctx.cwd, o.dir)
      try {
        await controlRequest(s.control, 'POST', '/shutdown')
      } catch {
        // The control socket is gone but the process is not: stop the pid lab.json recorded (our own lab process).
        process.kill(s.pid, 'SIGTERM')
      }
      const deadline = Date.now() + 20_000
      while (pidAlive(s.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
      if (pidAlive(s.pid)) {
        setExit(ExitCode.failed)
        ctx.stderr.write(`error: the lab (pid ${s.pid}) did not stop within 20s\n`)
        return
      }
      await removeState(dir)
      out(`lab "${s.name}" stopped`)
    })

  dirOption(lab.command('status'))
    .description('show clusters, nodes, versions, readiness, cordons and active faults')
    .option('--output <format>', 'table or json', 'table')
    .action(async (o: { dir?: string; output: string }) => {
      if (o.output !== 'table' && o.output !== 'json') throw new UsageError(`--output must be table or json, not ${JSON.stringify(o.output)}`)
      const s = (await runningLabFor(ctx.cwd, o.dir)).state
      const st = await controlRequest<LabStatus>(s.control, 'GET', '/status')
      out(o.output === 'json' ? JSON.stringify(st, null, 2) : formatStatus(st))
    })

  dirOption(lab.command('events'))
    .description('what changed: every mutating API request and state-changing node command, with time and client')
    .option('--since <when>', 'only events since a duration ago (10m, 1h) or a time (2026-12-01T07:00:00Z)')
    .option('--cluster <name>', 'only this cluster\'s events')
    .option('--format <format>', 'text or json (an array of events, oldest first)', 'text')
    .addHelpText('after', `
Clients: cert:CN=… (client certificate), token:sha256:… (a digest of the bearer token), ssh:USER SHA256:… (the
login and its key fingerprint, as ssh-keygen -lf prints it).`)
    .action(async (o: { dir?: string; since?: string; cluster?: string; format: string }) => {
      if (o.format !== 'text' && o.format !== 'json') throw new UsageError(`--format must be text or json, not ${JSON.stringify(o.format)}`)
      const since = o.since === undefined ? undefined : parseSince(o.since, Date.now(), parseDuration)
      if (o.since !== undefined && !since) throw new UsageError(`--since must be a duration (10m, 1h30m) or a time (2026-12-01T07:00:00Z), not ${JSON.stringify(o.since)}`)
      const s = (await runningLabFor(ctx.cwd, o.dir)).state
      const q = new URLSearchParams({ ...(since ? { since: since.toISOString() } : {}), ...(o.cluster ? { cluster: o.cluster } : {}) })
      const r = await controlRequest<{ events: LabEvent[]; dropped: number }>(s.control, 'GET', `/events?${q}`)
      if (o.format === 'json') {
        out(JSON.stringify(r.events, null, 2))
        return
      }
      if (r.dropped) out(`(the ${r.dropped} oldest events were dropped: the recorder keeps the latest 200000)`)
      out(r.events.length ? r.events.map(formatEvent).join('\n') : 'no events')
    })

  const fault = lab.command('fault').description('inject or clear faults on the running lab')
  const faultList = FAULT_NAMES.map((f) => `  ${f.padEnd(30)} ${FAULTS[f].description}`).join('\n')
  for (const action of ['add', 'clear'] as const) {
    dirOption(fault.command(`${action} <target> <fault>`))
      .description(action === 'add' ? 'switch a fault on for a cluster (CLUSTER) or one node (CLUSTER/NODE)' : 'switch a fault off (or disarm it)')
      .option('--param <key=value...>', 'fault parameter, e.g. --param delay=3s for apiserver-slow; --param for=15s (any fault): it goes off by itself after that long')
      .addHelpText('after', `\nFaults:\n${faultList}`)
      .action(async (target: string, name: string, o: { dir?: string; param?: string[] }) => {
        const t = parseFaultTarget(target)
        if (!t) throw new UsageError(`target must be CLUSTER or CLUSTER/NODE, not ${JSON.stringify(target)}`)
        if (!isFaultName(name)) throw new UsageError(`unknown fault ${JSON.stringify(name)}`, `one of: ${FAULT_NAMES.join(', ')}`)
        const params: Record<string, string> = {}
        for (const p of o.param ?? []) {
          const m = /^([A-Za-z][\w-]*)=(.*)$/.exec(p)
          if (!m) throw new UsageError(`--param must be key=value, not ${JSON.stringify(p)}`)
          params[m[1]!] = m[2]!
        }
        const s = (await runningLabFor(ctx.cwd, o.dir)).state
        const r = await controlRequest<{ changed: boolean }>(s.control, 'POST', '/faults', { action, fault: name, ...t, ...(Object.keys(params).length ? { params } : {}) })
        out(action === 'add' ? `fault ${name} on ${target}` : r.changed ? `fault ${name} cleared on ${target}` : `fault ${name} was not active on ${target}`)
      })
  }
  dirOption(fault.command('list'))
    .description('list active and armed faults (and every fault the lab knows)')
    .option('--all', 'also list every fault the lab can inject')
    .action(async (o: { dir?: string; all?: boolean }) => {
      if (o.all) out(`Faults:\n${faultList}`)
      const s = (await runningLabFor(ctx.cwd, o.dir)).state
      const st = await controlRequest<LabStatus>(s.control, 'GET', '/status')
      const lines: string[] = []
      for (const c of st.clusters) {
        for (const f of c.faults) lines.push(`${c.name}${f.node ? `/${f.node}` : ''}\t${f.fault}${f.params ? `\t${JSON.stringify(f.params)}` : ''}`)
        for (const a of c.armed) lines.push(`${c.name}${a.spec.node ? `/${a.spec.node}` : ''}\t${a.spec.fault}\tarmed: after ${a.after} of ${a.node}`)
      }
      out(lines.length ? lines.join('\n') : 'no active faults')
    })
}
