import { createHmac } from 'node:crypto'
import type { ClusterModel } from './cluster.js'

/**
 * Bootstrap tokens as the apiserver and kube-controller-manager treat them (k8s.io/cluster-bootstrap, the
 * bootstrap-token authenticator, the bootstrapsigner and tokencleaner controllers): a Secret
 * `kube-system/bootstrap-token-<id>` of type bootstrap.kubernetes.io/token holds the id, the secret, an optional
 * RFC 3339 expiration and its usages. kubeadm and k0s create them to join nodes.
 *  - authentication: `Authorization: Bearer <id>.<secret>` is user `system:bootstrap:<id>` while the Secret exists,
 *    matches, allows authentication and has not expired;
 *  - signing: kube-public/cluster-info carries `jws-kubeconfig-<id>`, a detached HS256 JWS of its kubeconfig keyed by
 *    the token's secret, for every unexpired token that allows signing (what `kubeadm join` verifies).
 */
export const TOKEN_PATTERN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/
export const BOOTSTRAP_TOKEN_TYPE = 'bootstrap.kubernetes.io/token'

interface TokenSecret {
  id: string
  secret: string
  expiration?: Date
  usages: Set<string>
  /** k0s: `usage-controller-join`, what `k0s token create --role=controller` sets (k0s pkg/token). */
  controllerJoin: boolean
}

const b64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8')
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

/** The bootstrap tokens stored in kube-system (expired ones included: the token cleaner's job is not instant). */
export function bootstrapTokens(m: ClusterModel): TokenSecret[] {
  const out: TokenSecret[] = []
  for (const s of m.storedSecrets.values()) {
    const meta = s.object.metadata as { namespace: string; name: string }
    if (meta.namespace !== 'kube-system' || s.object.type !== BOOTSTRAP_TOKEN_TYPE || !meta.name.startsWith('bootstrap-token-')) continue
    const data = (s.object.data ?? {}) as Record<string, string>
    const id = data['token-id'] ? b64(data['token-id']) : ''
    const secret = data['token-secret'] ? b64(data['token-secret']) : ''
    if (`bootstrap-token-${id}` !== meta.name || !TOKEN_PATTERN.test(`${id}.${secret}`)) continue
    const exp = data.expiration ? new Date(b64(data.expiration)) : undefined
    const usages = new Set(Object.entries(data).filter(([k, v]) => k.startsWith('usage-bootstrap-') && b64(v) === 'true').map(([k]) => k.slice('usage-bootstrap-'.length)))
    out.push({ id, secret, ...(exp ? { expiration: exp } : {}), usages, controllerJoin: data['usage-controller-join'] !== undefined && b64(data['usage-controller-join']) === 'true' })
  }
  return out
}

const live = (t: TokenSecret, now: number): boolean => !t.expiration || Number.isNaN(t.expiration.getTime()) || t.expiration.getTime() > now

/** The bootstrap-token authenticator: the token's id when it authenticates, else undefined. */
export function authenticateBootstrapToken(m: ClusterModel, bearer: string): string | undefined {
  const match = TOKEN_PATTERN.exec(bearer)
  if (!match) return undefined
  const t = bootstrapTokens(m).find((x) => x.id === match[1])
  return t && t.secret === match[2] && t.usages.has('authentication') && live(t, Date.now()) ? t.id : undefined
}

/** k0s's join API on a controller: a controller join token is a live bootstrap token made for controllers. */
export function authenticateControllerJoinToken(m: ClusterModel, bearer: string): boolean {
  const match = TOKEN_PATTERN.exec(bearer)
  const t = match ? bootstrapTokens(m).find((x) => x.id === match[1]) : undefined
  return t !== undefined && t.secret === match![2] && t.controllerJoin && live(t, Date.now())
}

/** cluster-bootstrap/token/jws ComputeDetachedSignature: `<protected header>..<signature>`. */
export function detachedJws(content: string, id: string, secret: string): string {
  const header = b64url(JSON.stringify({ alg: 'HS256', kid: id }))
  const signature = createHmac('sha256', secret).update(`${header}.${b64url(content)}`).digest()
  return `${header}..${b64url(signature)}`
}

/** The bootstrapsigner's signatures for kube-public/cluster-info's kubeconfig. */
export function clusterInfoSignatures(m: ClusterModel, kubeconfig: string): Record<string, string> {
  const out: Record<string, string> = {}
  const now = Date.now()
  for (const t of bootstrapTokens(m)) if (t.usages.has('signing') && live(t, now)) out[`jws-kubeconfig-${t.id}`] = detachedJws(kubeconfig, t.id, t.secret)
  return out
}
