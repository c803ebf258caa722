import { parseBytes, parseCpu } from '../quantity.js'

/**
 * The part of a Pod's spec the lab acts on, read from what the client sent (kubectl run, a gate's probe pod, a test).
 * Validation answers as the apiserver does (`Pod "x" is invalid: spec.containers[0].image: Required value`); what the
 * lab cannot run honestly (several containers, init containers) is refused with a 422 that says so, rather than
 * silently running part of it.
 */
export interface Toleration {
  key?: string
  operator?: 'Exists' | 'Equal'
  value?: string
  effect?: string
}

export interface BarePodSpec {
  container: string
  image: string
  command?: string[]
  args?: string[]
  env: { name: string; value?: string; fieldPath?: string }[]
  cpuMilli: number
  memoryBytes: number
  nodeName?: string
  nodeSelector: Record<string, string>
  tolerations: Toleration[]
  restartPolicy: 'Always' | 'OnFailure' | 'Never'
}

type Obj = Record<string, unknown>
const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string')

export function parseBarePodSpec(name: string, spec: Obj): { spec: BarePodSpec } | { error: string } {
  const invalid = (field: string, what: string) => ({ error: `Pod "${name}" is invalid: ${field}: ${what}` })
  const containers = spec.containers
  if (!Array.isArray(containers) || containers.length === 0) return invalid('spec.containers', 'Required value')
  if (containers.length > 1 || (Array.isArray(spec.initContainers) && spec.initContainers.length)) {
    return invalid('spec.containers', 'Unsupported value: the kupgrade lab runs pods with exactly one container and no init containers')
  }
  const c = containers[0] as Obj
  if (typeof c.name !== 'string' || !c.name) return invalid('spec.containers[0].name', 'Required value')
  if (typeof c.image !== 'string' || !c.image) return invalid('spec.containers[0].image', 'Required value')
  if (c.command !== undefined && !strings(c.command)) return invalid('spec.containers[0].command', 'Invalid value: must be a list of strings')
  if (c.args !== undefined && !strings(c.args)) return invalid('spec.containers[0].args', 'Invalid value: must be a list of strings')
  const env: BarePodSpec['env'] = []
  for (const [i, e] of ((c.env as Obj[] | undefined) ?? []).entries()) {
    if (typeof e.name !== 'string' || !e.name) return invalid(`spec.containers[0].env[${i}].name`, 'Required value')
    const fieldPath = ((e.valueFrom as Obj | undefined)?.fieldRef as Obj | undefined)?.fieldPath
    env.push({ name: e.name, ...(typeof e.value === 'string' ? { value: e.value } : {}), ...(typeof fieldPath === 'string' ? { fieldPath } : {}) })
  }
  const requests = ((c.resources as Obj | undefined)?.requests ?? {}) as Obj
  const cpuMilli = requests.cpu === undefined ? 0 : parseCpu(String(requests.cpu))
  const memoryBytes = requests.memory === undefined ? 0 : parseBytes(String(requests.memory))
  if (cpuMilli === undefined) return invalid('spec.containers[0].resources.requests[cpu]', `Invalid value: "${String(requests.cpu)}": must be a quantity`)
  if (memoryBytes === undefined) return invalid('spec.containers[0].resources.requests[memory]', `Invalid value: "${String(requests.memory)}": must be a quantity`)
  const restartPolicy = (spec.restartPolicy ?? 'Always') as string
  if (!['Always', 'OnFailure', 'Never'].includes(restartPolicy)) return invalid('spec.restartPolicy', `Unsupported value: "${restartPolicy}": supported values: "Always", "OnFailure", "Never"`)
  return {
    spec: {
      container: c.name, image: c.image,
      ...(c.command ? { command: c.command as string[] } : {}), ...(c.args ? { args: c.args as string[] } : {}),
      env, cpuMilli, memoryBytes,
      ...(typeof spec.nodeName === 'string' && spec.nodeName ? { nodeName: spec.nodeName } : {}),
      nodeSelector: (spec.nodeSelector ?? {}) as Record<string, string>,
      tolerations: (spec.tolerations ?? []) as Toleration[],
      restartPolicy: restartPolicy as BarePodSpec['restartPolicy'],
    },
  }
}

/** What the container runs: `command` replaces the image's entrypoint, `args` its default arguments. The lab knows
 *  the entrypoint of the images probes use (curl images run curl); for others `args` alone are the command, as for
 *  busybox and alpine, whose images have no entrypoint. Undefined: the image's own server, which runs until deleted. */
const ENTRYPOINTS: [RegExp, string[]][] = [[/(^|\/)curl(:|@|$)/, ['curl']]]

export function containerArgv(s: BarePodSpec): string[] | undefined {
  const entrypoint = s.command ?? ENTRYPOINTS.find(([re]) => re.test(s.image))?.[1]
  const argv = [...(entrypoint ?? []), ...(s.args ?? [])]
  return argv.length ? argv : undefined
}
