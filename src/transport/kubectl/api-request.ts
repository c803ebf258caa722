/**
 * The kubectl invocations kupgrade makes most, as the API requests kubectl itself sends for them, so they can go
 * through one long-lived `kubectl proxy` instead of a kubectl process each (api-proxy.ts). Only shapes whose request
 * is fixed by the arguments alone are listed; anything else — a resource that needs discovery, jsonpath output, a
 * namespaced read without `-n` (the kubeconfig's namespace would decide it) — is `undefined`, and runs as kubectl.
 */
export interface ApiRequest {
  method: 'GET' | 'POST' | 'DELETE' | 'PATCH'
  path: string
  body?: string
  /** The body's type when it is not plain JSON (a strategic merge patch). */
  contentType?: string
  /** What kubectl would have printed, from the answer's body (an HTTP 2xx). */
  output: (body: string) => string
  /**
   * What kubectl does after this read, decided by its answer (an HTTP 2xx), as kubectl decides it: the next request,
   * or what it prints without sending one. `output` is not used when this is set.
   */
  then?: (body: string) => ApiRequest | { output: string }
  /** An answer that is kubectl's success even though it is not 2xx (`--ignore-not-found`: 404). */
  okStatus?: number
  okOutput?: string
}

interface Kind {
  /** `/api/v1` or `/apis/GROUP/VERSION` */
  base: string
  plural: string
  namespaced: boolean
}

const CORE = '/api/v1'
const KINDS: Record<string, Kind> = {}
const kind = (names: string[], base: string, plural: string, namespaced: boolean) => {
  for (const n of names) KINDS[n] = { base, plural, namespaced }
}
kind(['node', 'nodes', 'no'], CORE, 'nodes', false)
kind(['pod', 'pods', 'po'], CORE, 'pods', true)
kind(['service', 'services', 'svc'], CORE, 'services', true)
kind(['event', 'events', 'ev'], CORE, 'events', true)
kind(['poddisruptionbudget', 'poddisruptionbudgets', 'pdb'], '/apis/policy/v1', 'poddisruptionbudgets', true)
kind(['lease', 'leases'], '/apis/coordination.k8s.io/v1', 'leases', true)

const seg = (s: string) => encodeURIComponent(s)

/** A name, namespace or selector kubectl would refuse or read differently (`-n=x`, empty) is not ours to guess. */
const plain = (s: string | undefined): s is string => s !== undefined && s !== '' && !s.startsWith('-')

interface GetArgs {
  words: string[]
  namespace?: string
  all: boolean
  labels?: string
  fields?: string
  json: boolean
}

/** `get`'s flags as kupgrade writes them; undefined for any flag it does not know (so kubectl reads it). */
function parseGet(args: readonly string[]): GetArgs | undefined {
  const g: GetArgs = { words: [], all: false, json: false }
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!
    const next = () => (plain(args[i + 1]) ? args[++i] : undefined)
    if (a === '-n' || a === '--namespace') {
      if ((g.namespace = next()) === undefined) return undefined
    } else if (a.startsWith('--namespace=')) g.namespace = a.slice(12)
    else if (a === '-A' || a === '--all-namespaces') g.all = true
    else if (a === '-l' || a === '--selector') {
      if ((g.labels = next()) === undefined) return undefined
    } else if (a.startsWith('--selector=')) g.labels = a.slice(11)
    else if (a === '--field-selector') {
      if ((g.fields = next()) === undefined) return undefined
    } else if (a.startsWith('--field-selector=')) g.fields = a.slice(17)
    else if (a === '-o' && args[i + 1] === 'json') {
      g.json = true
      i++
    } else if (a === '-o=json' || a === '--output=json') g.json = true
    else if (a.startsWith('-')) return undefined
    else g.words.push(a)
  }
  return g
}

/**
 * kubectl prints a list read as a `List` whose items carry their own apiVersion and kind (the API server's NodeList
 * leaves them out); callers that check an item's kind see what they would have seen from kubectl.
 */
function asKubectlList(body: string): string {
  const list = JSON.parse(body) as { apiVersion?: string; kind?: string; items?: Record<string, unknown>[] }
  const itemKind = list.kind?.endsWith('List') ? list.kind.slice(0, -4) : undefined
  const items = (list.items ?? []).map((i) => ({ apiVersion: list.apiVersion, kind: itemKind, ...i }))
  return JSON.stringify({ apiVersion: 'v1', items, kind: 'List', metadata: { resourceVersion: '' } })
}

function getRequest(args: readonly string[]): ApiRequest | undefined {
  if (args[1] === '--raw') return args.length === 3 && args[2]!.startsWith('/') ? { method: 'GET', path: args[2]!, output: (b) => b } : undefined
  const g = parseGet(args)
  if (!g || !g.json || g.words.length < 1 || g.words.length > 2) return undefined
  const k = KINDS[g.words[0]!]
  if (!k) return undefined
  const name = g.words[1]
  if (k.namespaced ? (g.all ? g.namespace !== undefined || name !== undefined : !plain(g.namespace)) : g.namespace !== undefined || g.all) return undefined
  const scope = k.namespaced && !g.all ? `${k.base}/namespaces/${seg(g.namespace!)}/${k.plural}` : `${k.base}/${k.plural}`
  if (name !== undefined) {
    if (g.labels !== undefined || g.fields !== undefined) return undefined
    return { method: 'GET', path: `${scope}/${seg(name)}`, output: (b) => b }
  }
  const q = new URLSearchParams()
  if (g.labels !== undefined) q.set('labelSelector', g.labels)
  if (g.fields !== undefined) q.set('fieldSelector', g.fields)
  const query = q.size ? `?${q}` : ''
  return { method: 'GET', path: `${scope}${query}`, output: asKubectlList }
}

/** `logs POD -n NS [-c C] [--since=Ns]`, the flags in any order. */
function logsRequest(args: readonly string[]): ApiRequest | undefined {
  let pod: string | undefined
  let ns: string | undefined
  const q = new URLSearchParams()
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!
    if (a === '-n' || a === '--namespace') {
      if (!plain((ns = args[++i]))) return undefined
    } else if (a === '-c' || a === '--container') {
      const c = args[++i]
      if (!plain(c)) return undefined
      q.set('container', c)
    } else if (/^--since=\d+s$/.test(a)) q.set('sinceSeconds', a.slice(8, -1))
    else if (a.startsWith('-') || pod !== undefined) return undefined
    else pod = a
  }
  if (!plain(pod) || !plain(ns)) return undefined
  return { method: 'GET', path: `${CORE}/namespaces/${seg(ns)}/pods/${seg(pod)}/log${q.size ? `?${q}` : ''}`, output: (b) => b }
}

/** `create -f - -o name` of one Pod with its namespace in the object: the probe pods. */
function createRequest(args: readonly string[], stdin: string | undefined): ApiRequest | undefined {
  if (args.join(' ') !== 'create -f - -o name' || stdin === undefined) return undefined
  let obj: { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } }
  try {
    obj = JSON.parse(stdin) as typeof obj
  } catch {
    return undefined
  }
  const ns = obj.metadata?.namespace
  if (obj.apiVersion !== 'v1' || obj.kind !== 'Pod' || typeof ns !== 'string' || !plain(ns) || typeof obj.metadata?.name !== 'string') return undefined
  return {
    method: 'POST',
    path: `${CORE}/namespaces/${seg(ns)}/pods?fieldManager=kubectl-create`,
    body: stdin,
    output: (b) => `pod/${(JSON.parse(b) as { metadata: { name: string } }).metadata.name}\n`,
  }
}

/** `delete pod NAME -n NS --ignore-not-found --wait=false`. */
function deleteRequest(args: readonly string[]): ApiRequest | undefined {
  const [, what, name, n, ns, ...rest] = args
  if ((what !== 'pod' && what !== 'pods') || !plain(name) || n !== '-n' || !plain(ns)) return undefined
  if (rest.slice().sort().join(' ') !== '--ignore-not-found --wait=false') return undefined
  return { method: 'DELETE', path: `${CORE}/namespaces/${seg(ns)}/pods/${seg(name)}`, output: () => `pod "${name}" deleted\n`, okStatus: 404, okOutput: '' }
}

/**
 * `cordon NAME` / `uncordon NAME` as kubectl sends them (k8s.io/kubectl/pkg/drain/cordon.go): the Node read first; no
 * write when it already is as asked; else the two-way strategic merge patch of `spec.unschedulable` (set to true, or
 * removed: false is its zero value). What it prints is kubectl's: `node/NAME cordoned`, `node/NAME already cordoned`.
 */
function cordonRequest(args: readonly string[]): ApiRequest | undefined {
  const [verb, name, ...rest] = args
  if (!plain(name) || rest.length > 0) return undefined
  const cordon = verb === 'cordon'
  const done = cordon ? 'cordoned' : 'uncordoned'
  const path = `${CORE}/nodes/${seg(name)}`
  return {
    method: 'GET', path, output: () => '',
    then: (body) => {
      const node = JSON.parse(body) as { metadata?: { name?: string }; spec?: { unschedulable?: boolean } }
      const shown = `node/${node.metadata?.name ?? name}`
      if ((node.spec?.unschedulable === true) === cordon) return { output: `${shown} already ${done}\n` }
      return {
        // The manager the API server records for the field: kupgrade, which asked for the change (kubectl sets none
        // and is recorded by its user agent).
        method: 'PATCH', path: `${path}?fieldManager=kupgrade`, contentType: 'application/strategic-merge-patch+json',
        body: JSON.stringify({ spec: { unschedulable: cordon ? true : null } }), output: () => `${shown} ${done}\n`,
      }
    },
  }
}

export function apiRequestFor(args: readonly string[], stdin?: string): ApiRequest | undefined {
  switch (args[0]) {
    case 'get': return stdin === undefined ? getRequest(args) : undefined
    case 'logs': return stdin === undefined ? logsRequest(args) : undefined
    case 'create': return createRequest(args, stdin)
    case 'delete': return stdin === undefined ? deleteRequest(args) : undefined
    case 'cordon':
    case 'uncordon': return stdin === undefined ? cordonRequest(args) : undefined
    default: return undefined
  }
}

/** A watch target (`['node', NAME]`, `['pod', NAME, '-n', NS]`) as the object's path and its collection's. */
export function watchPaths(target: readonly string[]): { object: string; collection: string; name: string } | undefined {
  const g = parseGet(['get', ...target])
  if (!g || g.json || g.all || g.labels !== undefined || g.fields !== undefined || g.words.length !== 2) return undefined
  const k = KINDS[g.words[0]!]
  const name = g.words[1]!
  if (!k || (k.namespaced ? !plain(g.namespace) : g.namespace !== undefined)) return undefined
  const collection = k.namespaced ? `${k.base}/namespaces/${seg(g.namespace!)}/${k.plural}` : `${k.base}/${k.plural}`
  return { object: `${collection}/${seg(name)}`, collection, name }
}
