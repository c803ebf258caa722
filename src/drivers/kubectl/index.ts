import type { Step, StepOf } from '../../planner/types.js'
import { parseDuration } from '../../util/duration.js'
import { kubectl, kubectlCheck, line, literal } from '../common/commands.js'
import type { ActionProgram } from '../program.js'
import type { ActionModule } from '../types.js'

/**
 * The executor-owned node actions that write through kubectl (facts §5): cordon, drain, uncordon, and the wait for
 * Ready. They are programs like any driver step, so a dry-run records kubectl writes through the same seam as SSH
 * writes, and `plan` prints the exact kubectl command.
 */
const nodeOf = (step: Step): string => {
  if (!step.node) throw new Error(`step ${step.id}: ${step.action} needs a node`)
  return step.node
}
const unschedulable = (node: string) => ['get', 'node', node, '-o', 'jsonpath={.spec.unschedulable}']

/**
 * kubectl cordon and uncordon say what they did (kubectl's drain.go: `node/NAME cordoned`, `node/NAME already
 * cordoned`): the answer is the check, so neither needs a `kubectl get` before and after (four processes per node).
 */
const reportsOf = (node: string, done: 'cordoned' | 'uncordoned') =>
  ({ changed: `^${literal(`node/${node} ${done}`)}$`, unchanged: `^${literal(`node/${node} already ${done}`)}$` })

/** `kubectl drain` with the plan's options; never without --timeout (kubectl's default 0s waits forever). */
export function drainArgs(node: string, p: StepOf<'drain'>['params']): string[] {
  const args = ['drain', node]
  if (p.ignoreDaemonSets) args.push('--ignore-daemonsets')
  if (p.deleteEmptyDirData) args.push('--delete-emptydir-data')
  if (p.force) args.push('--force')
  if (p.gracePeriod !== undefined) args.push(`--grace-period=${Math.round((parseDuration(p.gracePeriod) ?? 0) / 1000)}`)
  // Go durations have no days: 2d becomes 172800s.
  args.push(`--timeout=${/d/.test(p.timeout) ? `${Math.round((parseDuration(p.timeout) ?? 0) / 1000)}s` : p.timeout}`)
  return args
}

export const kubectlModule: ActionModule = {
  name: 'kubectl',
  actions: ['cordon', 'drain', 'uncordon', 'wait-ready', 'delete-node'],
  programFor: (step: Step): ActionProgram => {
    const node = nodeOf(step)
    switch (step.action) {
      case 'cordon': {
        const run = kubectl(['cordon', node], `cordon ${node}: no new pods while it is upgraded`)
        return { title: line(run), verify: [kubectlCheck(unschedulable(node), `${node} is cordoned`, { stdoutMatches: '^true$' })], run: [run], reports: reportsOf(node, 'cordoned') }
      }
      case 'drain': {
        // kubectl's own --timeout bounds the drain; the command's limit leaves it a minute to report.
        const run = kubectl(drainArgs(node, step.params), `drain ${node}: evict its pods through the Eviction API (PodDisruptionBudgets honoured)`, (parseDuration(step.params.timeout) ?? 300_000) + 60_000)
        // Whether a drain finished cannot be read back simply (DaemonSet and mirror pods stay): it always runs, and
        // a repeated drain of a drained node is a no-op.
        return { title: line(run), verify: [], run: [run] }
      }
      case 'uncordon': {
        const run = kubectl(['uncordon', node], `uncordon ${node}: it takes pods again`)
        return { title: line(run), verify: [kubectlCheck(unschedulable(node), `${node} is schedulable`, { stdoutExcludes: 'true' })], run: [run], reports: reportsOf(node, 'uncordoned') }
      }
      case 'wait-ready': {
        const { timeout, kubelet } = step.params
        return {
          title: `wait for ${node} Ready${kubelet ? ` with kubelet ${kubelet}` : ''} (timeout ${timeout})`,
          verify: [],
          run: [],
          // Without a Kubernetes hop (an OS-only pass) any version will do: the one the node already reports.
          wait: [{ kind: 'node-ready', node, kubeletVersion: kubelet ?? '', timeoutMs: parseDuration(timeout) ?? 300_000 }],
        }
      }
      case 'delete-node': {
        const run = kubectl(['delete', 'node', node, '--ignore-not-found', '--wait=true'], `delete the Node ${node}: the reset machine rejoins as a new Node`, 2 * 60_000)
        // Done when the Node is gone; once the node rejoined its Node is back, which the journal's done already covers.
        return { title: line(run), verify: [kubectlCheck(['get', 'node', node, '--ignore-not-found', '-o', 'name'], `the Node ${node} is gone`, { stdoutExcludes: 'node/' })], run: [run] }
      }
      default:
        throw new Error(`kubectl: no program for action ${step.action}`)
    }
  },
}
