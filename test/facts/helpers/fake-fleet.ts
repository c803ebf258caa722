import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Node, Pod } from 'kubernetes-types/core/v1.js'

/** Builders for the canned API objects and node stand-in binaries the facts tests serve. */

export function apiNode(name: string, kubelet: string, o: { ready?: boolean; cordoned?: boolean; roles?: string[]; labels?: Record<string, string> } = {}): Node {
  return {
    metadata: { name, labels: { ...Object.fromEntries((o.roles ?? []).map((r) => [`node-role.kubernetes.io/${r}`, 'true'])), ...o.labels } },
    spec: o.cordoned ? { unschedulable: true } : {},
    status: {
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
      // Deliberately wrong: kupgrade must never read kube-proxy's version from here (facts §0.1).
      nodeInfo: { kubeletVersion: kubelet, kubeProxyVersion: 'v9.9.9', kernelVersion: '6.1.0-api', osImage: 'Debian', architecture: 'amd64', bootID: '', containerRuntimeVersion: '', machineID: '', operatingSystem: 'linux', systemUUID: '' },
    },
  }
}

export function systemPod(name: string, node: string, image: string, labels: Record<string, string>, created = '2026-01-01T00:00:00Z'): Pod {
  const container = labels['k8s-app'] ?? labels.component ?? 'c'
  return { metadata: { name, namespace: 'kube-system', labels, creationTimestamp: created }, spec: { nodeName: node, containers: [{ name: container, image }] } }
}

export function writeApi(dir: string, context: string, a: { version: string; nodes: Node[]; pods: Pod[]; down?: boolean }): void {
  const d = join(dir, context)
  mkdirSync(d, { recursive: true })
  writeFileSync(join(d, 'version.json'), JSON.stringify({ major: '1', minor: '29', gitVersion: a.version }))
  writeFileSync(join(d, 'nodes.json'), JSON.stringify({ kind: 'NodeList', items: a.nodes }))
  writeFileSync(join(d, 'pods.json'), JSON.stringify({ kind: 'PodList', items: a.pods }))
  if (a.down) writeFileSync(join(d, 'down'), '')
}

/** Stand-ins for a node's distribution binaries, systemctl and iptables, with the real tools' output formats. */
export function nodeBin(dir: string, o: { k3s?: string; kubeadm?: string; kubelet?: string; active?: string[]; iptables?: string }): string {
  mkdirSync(dir, { recursive: true })
  const script = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`)
    chmodSync(join(dir, name), 0o755)
  }
  if (o.k3s) script('k3s', `[ "$1" = "--version" ] && printf 'k3s version %s (86f10213)\\ngo version go1.21.7\\n' '${o.k3s}'`)
  if (o.kubeadm) script('kubeadm', `[ "$1 $2 $3" = "version -o short" ] && echo '${o.kubeadm}'`)
  if (o.kubelet) script('kubelet', `[ "$1" = "--version" ] && echo 'Kubernetes ${o.kubelet}'`)
  // As systemd's is-active: a state per unit named, in order; exit 0 when any is active, else 3.
  script('systemctl', `[ "$1" = "is-active" ] || exit 1\nshift; rc=3\nfor u in "$@"; do case " ${(o.active ?? []).join(' ')} " in *" $u "*) echo active; rc=0 ;; *) echo inactive ;; esac; done\nexit $rc`)
  script('iptables', `echo 'iptables v1.8.9 (${o.iptables ?? 'nf_tables'})'`)
  return dir
}
