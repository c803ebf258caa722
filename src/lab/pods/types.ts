import type { BarePodSpec } from './spec.js'

/** A pod created through the API (kind 'bare'): what it asked to run and how its one container went. */
export interface BarePodState {
  spec: BarePodSpec
  /** The container's output, stdout and stderr interleaved as the runtime's log file keeps them (bounded). */
  log: string
  /** The current container's start; unset until the kubelet started it. */
  startedAt?: Date
  /** The last run's end. */
  terminated?: { exitCode: number; reason: 'Completed' | 'Error'; startedAt: Date; finishedAt: Date }
  /** Waiting to be restarted (restartPolicy Always/OnFailure after an exit). */
  waiting?: { reason: string; message: string }
  restartCount: number
  /** Rejected by the kubelet's admission (a pod with spec.nodeName that does not fit the node): status reason/message. */
  rejected?: { reason: string; message: string }
  /** The back-off after an exit is over: start the container again. */
  restartDue?: boolean
  /** The image's own server (no command): it runs until the pod is deleted, without a process in the lab. */
  serving?: boolean
}
