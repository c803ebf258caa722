/**
 * What the lab's recorder keeps: every mutating API request and every state-changing node command, each with a time,
 * the cluster and the client that did it. Tests and `kupgrade lab events` read these to prove what a run changed
 * (a gate changed nothing, control-plane nodes went one at a time, at most maxUnavailable workers were cordoned).
 */

/** Kubernetes audit verbs for the write methods (an eviction is `create` on the `eviction` subresource). */
export type ApiVerb = 'create' | 'update' | 'patch' | 'delete' | 'deletecollection'

interface Base {
  /** Increases by one per recorded event, across the whole lab: the order of events, even within a millisecond. */
  seq: number
  /** ISO 8601 with milliseconds. */
  at: string
  cluster: string
  /**
   * Who did it. API: `cert:CN=<common name>` (client certificate), `token:sha256:<first 12 hex>` (a bearer token,
   * never the token itself), `anonymous`. Node: `ssh:<user> <SHA256:key fingerprint>` as `ssh-keygen -lf` prints it,
   * or `lab` for what the lab does itself (a boot after a reboot).
   */
  client: string
}

export interface ApiEvent extends Base {
  source: 'api'
  verb: ApiVerb
  method: string
  /** The request path without its query. */
  path: string
  /** Plural resource (`pods`, `nodes`, `leases` …), `''` for a path that names none. */
  resource: string
  subresource?: string
  namespace?: string
  name?: string
  /** The HTTP status the server answered: refused and failed requests are recorded too. */
  code: number
  /** Writes to a Node: whether it is cordoned after the request, and its role. */
  unschedulable?: boolean
  nodeRole?: 'control-plane' | 'worker'
}

export type NodeAction =
  | 'service-stop'
  | 'service-start'
  | 'install'
  | 'upgrade-applied'
  | 'certs-renewed'
  | 'reboot'
  | 'package'
  | 'file-write'
  /** A snapshot or backup was written (k0s backup, k3s etcd-snapshot save, etcdctl snapshot save): `path` is it. */
  | 'backup'
  /** The node's distribution state was wiped (k0s reset, kubeadm reset, k3s uninstall). */
  | 'reset'
  /** A backup was restored onto the node (k0s restore): `path` is the archive. */
  | 'restore'

/** What a node-side change says beyond its action, as the LabNode emits it and the recorder keeps it. */
interface NodeChangeDetail {
  action: NodeAction
  /** service-*: the systemd unit. */
  unit?: string
  /** service-start / service-stop / install / upgrade-applied: the version involved. */
  version?: string
  /** install: which binary changed. */
  binary?: string
  /** upgrade-applied: `kubeadm upgrade apply` (the cluster's first control-plane node) or `kubeadm upgrade node` (every
   *  other node): which one ran is what tells a correct HA upgrade from one that re-applied on every node. */
  command?: 'apply' | 'node'
  /** file-write / package: the absolute path in the node, and what happened to it. */
  path?: string
  change?: 'created' | 'modified' | 'deleted'
}

export interface NodeEvent extends Base, NodeChangeDetail {
  source: 'node'
  node: string
  role: 'control-plane' | 'worker'
}

export type LabEvent = ApiEvent | NodeEvent

/** A node-side change before the lab stamps it with seq, cluster, node and role (what a LabNode emits). */
export interface NodeChange extends NodeChangeDetail {
  client: string
  atMs: number
}
