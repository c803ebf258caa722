/**
 * A small seeded generator of valid UpgradePlans for property tests. No dependency: mulberry32 for randomness, so a
 * failing case is reproduced from its seed alone.
 */
export type Rng = () => number

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1))
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!
const chance = (rng: Rng, p: number): boolean => rng() < p

export type Dist = 'k0s' | 'k3s' | 'kubeadm'

export interface GeneratedCluster {
  name: string
  distribution: Dist
  from: string
  controlPlanes: number
  workers: number
  /** Minors between from and the target: 0 (patch, revision or nothing), 1 or 2. */
  minorsBehind: number
}

export interface Generated {
  seed: number
  /** The raw plan document, as a user would write it (JSON is YAML, so it can go through parsePlan as text). */
  raw: Record<string, unknown>
  clusters: GeneratedCluster[]
  stages: { name: string; clusters: string[] }[]
  maxUnavailable: number | string
  canary: number
  hasKubernetesTarget: boolean
  hasOs: boolean
}

const RESERVED = ['lock', 'pre', 'hop1', 'backup', 'approval', 'hook', 'soak', 'post', 'os', 'unlock', 'gate', 'before', 'after']

const GATE_PRE = ['version-skew', 'api-vip', 'nodes-ready', 'etcd', 'capacity', { certificates: { minValidity: '30d' } }, { 'disk-space': { minFree: '10%' } }]
const GATE_NODE = ['nodes-ready', 'version-skew', 'api-vip', { 'kube-proxy-sync': { maxSyncAge: '2m' } }, { 'disk-space': { minFree: '5Gi' } }]

/** A valid plan: 1–4 stages, 1–5 clusters, 1–5 control-plane nodes, 0–40 workers, 0–2 minor hops with via. */
export function generatePlan(seed: number): Generated {
  const rng = mulberry32(seed)
  const clusterCount = int(rng, 1, 5)
  const stageCount = int(rng, 1, Math.min(4, clusterCount))
  const targetMinor = int(rng, 27, 32)
  const targetPatch = int(rng, 0, 12)
  const target = `v1.${targetMinor}.${targetPatch}`
  const hasKubernetesTarget = chance(rng, 0.9)
  const hasOs = !hasKubernetesTarget || chance(rng, 0.25)
  // Explicit distribution releases, sometimes: revision-only upgrades must be planned too.
  const k3sRev = chance(rng, 0.3) ? int(rng, 1, 12) : undefined
  const k0sRev = chance(rng, 0.3) ? int(rng, 0, 12) : undefined

  const clusters: GeneratedCluster[] = []
  for (let ci = 0; ci < clusterCount; ci++) {
    const distribution = pick(rng, ['k0s', 'k3s', 'kubeadm'] as const)
    const minorsBehind = hasKubernetesTarget ? int(rng, 0, 2) : 0
    const minor = targetMinor - minorsBehind
    // Same minor: an earlier (or the same) patch, so never a downgrade.
    const patch = minorsBehind === 0 ? int(rng, 0, targetPatch) : int(rng, 0, 15)
    let from = `v1.${minor}.${patch}`
    if (distribution === 'k3s' && chance(rng, 0.6)) {
      const rev = minorsBehind === 0 && patch === targetPatch && k3sRev !== undefined ? int(rng, 1, k3sRev) : int(rng, 1, 12)
      from += minorsBehind === 0 && patch === targetPatch && k3sRev === undefined ? '+k3s1' : `+k3s${rev}`
    }
    if (distribution === 'k0s' && chance(rng, 0.6)) {
      const rev = minorsBehind === 0 && patch === targetPatch && k0sRev !== undefined ? int(rng, 0, k0sRev) : int(rng, 0, 12)
      from += minorsBehind === 0 && patch === targetPatch && k0sRev === undefined ? '+k0s.0' : `+k0s.${rev}`
    }
    // Sometimes names that are also words in step ids (lock, pre, hop1, backup…): ids must stay unique anyway.
    const name = chance(rng, 0.25) ? `${RESERVED[ci % RESERVED.length]}` : `c${ci}`
    clusters.push({ name, distribution, from, controlPlanes: int(rng, 1, 5), workers: chance(rng, 0.15) ? 0 : int(rng, 0, 40), minorsBehind })
  }

  // Split the clusters over the stages in order, each stage at least one.
  const order = clusters.map((c) => c.name)
  const stages: { name: string; clusters: string[] }[] = []
  let at = 0
  for (let si = 0; si < stageCount; si++) {
    const left = stageCount - si - 1
    const take = si === stageCount - 1 ? order.length - at : int(rng, 1, order.length - at - left)
    stages.push({ name: `s${si}`, clusters: order.slice(at, at + take) })
    at += take
  }

  const maxUnavailable = chance(rng, 0.5) ? int(rng, 1, 10) : `${int(rng, 1, 100)}%`
  const canary = int(rng, 0, 3)
  const via = [`v1.${targetMinor - 1}.${int(rng, 0, 15)}`, `v1.${targetMinor - 2}.${int(rng, 0, 15)}`]
  if (chance(rng, 0.3)) via.push(`v1.${targetMinor - 1}.${int(rng, 0, 15)}`) // two patches of one minor: the later wins

  const targetDoc: Record<string, unknown> = {}
  if (hasKubernetesTarget) {
    targetDoc.kubernetes = target
    if (clusters.some((c) => c.minorsBehind > 0) || chance(rng, 0.3)) targetDoc.via = via
    if (k3sRev !== undefined) targetDoc.k3s = `${target}+k3s${k3sRev}`
    if (k0sRev !== undefined) targetDoc.k0s = `${target}+k0s.${k0sRev}`
    if (chance(rng, 0.2)) targetDoc.kubeadm = `1.${targetMinor}.${targetPatch}-${int(rng, 1, 3)}.1`
  }
  if (hasOs) targetDoc.os = { packages: pick(rng, ['all', 'security', ['openssl', 'libc6']] as const), reboot: pick(rng, ['never', 'if-required', 'always'] as const) }

  const gates: Record<string, unknown> = {}
  if (chance(rng, 0.4)) gates.pre = GATE_PRE.filter(() => chance(rng, 0.6))
  if (chance(rng, 0.4)) gates.afterNode = GATE_NODE.filter(() => chance(rng, 0.5))
  if (chance(rng, 0.3)) gates.beforeNode = []
  const hooks: Record<string, string[]> = {}
  if (chance(rng, 0.3)) hooks.beforeNode = ['hooks/notify.mjs']
  if (chance(rng, 0.2)) hooks.afterStage = ['hooks/notify.mjs']

  const nodeNames = clusters.map((c) => {
    const names = [
      ...Array.from({ length: c.controlPlanes }, (_, i) => `${c.name}-cp-${i + 1}`),
      ...Array.from({ length: c.workers }, (_, i) => `${c.name}-w-${i + 1}`),
    ]
    if (chance(rng, 0.25)) names.forEach((_, i) => { if (i < RESERVED.length && chance(rng, 0.5)) names[i] = RESERVED[i]! })
    return names
  })

  const raw = {
    apiVersion: 'kupgrade.dev/v1alpha1',
    kind: 'UpgradePlan',
    metadata: { name: `gen-${seed}` },
    spec: {
      target: targetDoc,
      stages: stages.map((s, si) => ({
        name: s.name,
        clusters: s.clusters,
        ...(chance(rng, 0.5) ? { soak: pick(rng, ['0s', '90s', '30m', '1h30m']) } : {}),
        ...(si > 0 && chance(rng, 0.5) ? { approval: 'required' } : {}),
        ...(chance(rng, 0.3) ? { parallelClusters: int(rng, 1, 3) } : {}),
      })),
      clusters: clusters.map((c, ci) => ({
        name: c.name,
        distribution: c.distribution,
        from: c.from,
        apiEndpoint: `https://10.${ci}.255.1:6443`,
        nodes: [
          ...Array.from({ length: c.controlPlanes }, (_, i) => ({ name: nodeNames[ci]![i]!, host: `10.${ci}.0.${i + 1}`, role: 'control-plane' })),
          ...Array.from({ length: c.workers }, (_, i) => ({ name: nodeNames[ci]![c.controlPlanes + i]!, host: `10.${ci}.1.${i + 1}`, role: 'worker' })),
        ],
      })),
      strategy: {
        workers: { maxUnavailable, canary },
        ...(chance(rng, 0.5) ? { onFailure: pick(rng, ['rollback', 'rebuild', 'pause', 'abort']) } : {}),
      },
      ...(Object.keys(gates).length ? { gates } : {}),
      ...(Object.keys(hooks).length ? { hooks } : {}),
    },
  }
  return { seed, raw, clusters, stages, maxUnavailable, canary, hasKubernetesTarget, hasOs }
}
