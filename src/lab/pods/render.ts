import type { PodState } from '../fleet/types.js'

type Obj = Record<string, unknown>
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z')

/**
 * The container status the kubelet posts for a pod created through the API, from what really happened: nothing
 * before the kubelet started it (a Pending pod on a node that is down has no container status at all), running,
 * terminated with the command's exit code, or waiting in CrashLoopBackOff with the last run as lastState.
 */
export function bareContainerStatuses(p: PodState): Obj[] | undefined {
  const b = p.bare
  if (!b?.startedAt) return undefined
  const terminated = (t: NonNullable<typeof b.terminated>) => ({ terminated: { exitCode: t.exitCode, reason: t.reason, startedAt: iso(t.startedAt), finishedAt: iso(t.finishedAt) } })
  let state: Obj
  let lastState: Obj = {}
  if (b.waiting) {
    state = { waiting: b.waiting }
    if (b.terminated) lastState = terminated(b.terminated)
  } else if (p.phase === 'Succeeded' || p.phase === 'Failed') {
    state = terminated(b.terminated!)
  } else {
    state = { running: { startedAt: iso(b.startedAt) } }
    if (b.terminated && b.restartCount > 0) lastState = terminated(b.terminated)
  }
  const running = 'running' in state
  return [{ name: b.spec.container, image: b.spec.image, imageID: '', ready: running, restartCount: b.restartCount, started: running, state, lastState }]
}

/** `kubectl logs` of such a pod: the command's own output, byte for byte (tailLines counts its lines). */
export function bareLogText(p: PodState, tailLines: number): string {
  const log = p.bare?.log ?? ''
  if (!(tailLines > 0)) return log
  const lines = log.split('\n')
  const trailing = log.endsWith('\n') ? lines.pop() : undefined
  return lines.slice(-tailLines).join('\n') + (trailing !== undefined ? '\n' : '')
}
