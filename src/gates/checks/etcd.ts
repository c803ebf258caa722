import { shellJoin } from '../../transport/quote.js'
import { clip, humanBytes, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import { sectionsOf } from '../read/sections.js'
import type { Gate, GateContext } from '../types.js'

export interface EtcdParams { maxDbSizeRatio: number }

/** etcd client certificates per distribution (facts §7 "etcd certs"). */
export const ETCD_TLS: Record<GateContext['distribution'], { cacert: string; cert: string; key: string }> = {
  kubeadm: { cacert: '/etc/kubernetes/pki/etcd/ca.crt', cert: '/etc/kubernetes/pki/etcd/healthcheck-client.crt', key: '/etc/kubernetes/pki/etcd/healthcheck-client.key' },
  k3s: { cacert: '/var/lib/rancher/k3s/server/tls/etcd/server-ca.crt', cert: '/var/lib/rancher/k3s/server/tls/etcd/client.crt', key: '/var/lib/rancher/k3s/server/tls/etcd/client.key' },
  k0s: { cacert: '/var/lib/k0s/pki/etcd/ca.crt', cert: '/var/lib/k0s/pki/apiserver-etcd-client.crt', key: '/var/lib/k0s/pki/apiserver-etcd-client.key' },
}
/** etcd's default backend quota when --quota-backend-bytes is 0 or unset (facts §4.7). */
export const DEFAULT_QUOTA = 2 * 1024 ** 3
const K3S_SQLITE = '/var/lib/rancher/k3s/server/db/state.db'
const K3S_ETCD_DIR = '/var/lib/rancher/k3s/server/db/etcd'

interface Status { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string; dbSize: number; dbSizeInUse?: number; isLearner?: boolean; errors?: string[] } }

/**
 * etcd on every control-plane node (incident etcd-hpa-cascading-failure): each local member healthy, exactly one
 * leader that every member agrees on, as many members as control-plane nodes, no alarm, and DB size under
 * `maxDbSizeRatio` of the backend quota. A k3s server on SQLite has no etcd: the database file and its disk are
 * checked instead.
 */
export const etcdGate: Gate<EtcdParams> = {
  id: 'etcd',
  async check(ctx, p) {
    const cps = ctx.nodes.filter((n) => n.role === 'control-plane')
    const findings: Finding[] = []
    const tls = ETCD_TLS[ctx.distribution]
    const leaders = new Map<string, string[]>()
    const memberLists: { node: string; members: EtcdMemberName[] }[] = []
    // Servers that answered with the SQLite evidence: for them the verdict must speak of SQLite, not of etcd.
    const onSqlite: string[] = []
    await Promise.all(cps.map(async (n) => {
      const ectl = (...args: string[]) => shellJoin(['etcdctl', '--endpoints=https://127.0.0.1:2379', `--cacert=${tls.cacert}`, `--cert=${tls.cert}`, `--key=${tls.key}`, '--dial-timeout=3s', '--command-timeout=5s', ...args])
      const script = [SCRIPT_ENV, 'export ETCDCTL_API=3',
        ctx.distribution === 'k3s' ? `if [ -f ${K3S_SQLITE} ] && [ ! -d ${K3S_ETCD_DIR} ]; then echo 'datastore sqlite'; ls -ln ${K3S_SQLITE}; df -P -B1 /var/lib/rancher/k3s/server/db 2>&1 | tail -n 1; exit 0; fi` : ':',
        "command -v etcdctl >/dev/null 2>&1 || { echo 'no-etcdctl'; exit 0; }",
        `echo '@@health'; ${ectl('endpoint', 'health', '-w', 'json')} 2>&1; echo "rc=$?"`,
        `echo '@@status'; ${ectl('endpoint', 'status', '-w', 'json')} 2>/dev/null; echo "rc=$?"`,
        `echo '@@members'; ${ectl('member', 'list', '-w', 'json')} 2>&1; echo "rc=$?"`,
        `echo '@@alarms'; ${ectl('alarm', 'list')} 2>&1; echo "rc=$?"`,
        `echo '@@quota'; { ps -eo args 2>/dev/null | grep -o -- '--quota-backend-bytes=[0-9]*' | head -n 1; grep -ho 'quota-backend-bytes=[0-9]*' /etc/rancher/k3s/config.yaml /etc/k0s/k0s.yaml 2>/dev/null | head -n 1; } || true`,
      ].join('\n')
      const r = await readNode(ctx, n.target, { script }, { privileged: true, timeoutMs: 60_000 })
      const at = `node ${n.name}`
      if (r.error) return void findings.push({ status: 'unknown', source: at, observed: r.error, problem: `${n.name} unreachable over SSH` })
      if (r.stdout.startsWith('datastore sqlite')) {
        onSqlite.push(n.name)
        return void findings.push(...sqlite(n.name, r.stdout))
      }
      if (r.stdout.includes('no-etcdctl')) return void findings.push({ status: 'unknown', source: `${at}: command -v etcdctl`, observed: 'etcdctl is not installed on this control-plane node', problem: `${n.name}: etcdctl missing` })
      const j = judgeEtcdNode(n.name, r.stdout, p.maxDbSizeRatio)
      findings.push(...j.findings)
      if (j.leader !== undefined) leaders.set(j.leader, [...(leaders.get(j.leader) ?? []), n.name])
      if (j.members !== undefined) memberLists.push({ node: n.name, members: j.members })
    }))
    if (leaders.size > 1) findings.push({ status: 'fail', source: 'etcdctl endpoint status on each control-plane node', observed: [...leaders].map(([l, ns]) => `${ns.join(', ')} see leader ${l}`).join('; '), problem: 'etcd members disagree on the leader' })
    // In the plan's order, not in the order the nodes answered.
    const order = (node: string) => cps.findIndex((n) => n.name === node)
    const membership = membershipFinding(ctx.distribution, cps.map((n) => ({ name: n.name, host: n.target.host })), memberLists.sort((a, b) => order(a.node) - order(b.node)))
    if (membership) findings.push(membership)
    // A k3s server on SQLite has no etcd (the lab showed the etcd wording on one): say what was checked instead.
    if (onSqlite.length && onSqlite.length === cps.length) {
      return verdict('etcd', findings, {
        ok: `no etcd: k3s keeps its data in SQLite on ${onSqlite.join(', ')}, with room for the database to grow`,
        hint: `free disk space next to ${K3S_SQLITE} (SQLite grows into it, and the pre-hop backup copies it under /var/lib/kupgrade) before upgrading`,
      })
    }
    return verdict('etcd', findings, {
      ok: `etcd healthy on ${cps.length} control-plane node${cps.length === 1 ? '' : 's'}, one leader, DB under ${p.maxDbSizeRatio * 100}% of quota`,
      hint: membership?.status === 'fail' && findings.every((f) => f.status === 'pass' || f === membership)
        ? MEMBERSHIP_HINT
        : 'fix etcd first: etcdctl endpoint status --cluster; over quota → compact, defrag one member at a time, alarm disarm (facts §4.7)',
    })
  },
}

export interface EtcdMemberName { name: string; peer?: string; id: string }

const MEMBERSHIP_HINT = "list every control-plane node in the cluster's nodes (kupgrade upgrades, backs up and restores only the nodes the plan lists), or remove the member of a machine that is gone (etcdctl member remove <ID>) before upgrading"

/**
 * The etcd members against the plan's control-plane nodes: a member no planned node accounts for is a control plane the
 * run would leave at its version (and outside its backups and restores); a planned node without a member is not in
 * this etcd at all. A member is a node's by its name (k3s: the node's plus 8 hex digits, pkg/etcd setName; kubeadm:
 * the node's; k0s: the host's name) or, where a plan names a node otherwise, by its peer URL's host being the node's
 * address. Said once, from the first node that listed them: every member's list is the same raft state.
 */
export function membershipFinding(dist: GateContext['distribution'], planned: { name: string; host: string }[], lists: { node: string; members: EtcdMemberName[] }[]): Finding | undefined {
  const first = lists[0]
  if (!first) return undefined
  const named = (m: EtcdMemberName, n: string) => m.name === n || (dist === 'k3s' && m.name.length === n.length + 9 && m.name.startsWith(`${n}-`) && /^[0-9a-f]{8}$/.test(m.name.slice(n.length + 1)))
  const nodeOf = (m: EtcdMemberName) => (planned.find((n) => named(m, n.name)) ?? planned.find((n) => m.peer !== undefined && peerHost(m.peer) === n.host))?.name
  const extra = first.members.filter((m) => nodeOf(m) === undefined)
  const accounted = new Set(first.members.map(nodeOf))
  const missing = planned.map((n) => n.name).filter((n) => !accounted.has(n))
  const source = `etcdctl member list on ${lists.map((l) => l.node).join(', ')}`
  const observed = `${first.members.length} member${first.members.length === 1 ? '' : 's'}: ${first.members.map((m) => `${m.name || '(unstarted)'}${m.peer ? ` (${m.peer})` : ''}`).join(', ')}; control-plane nodes in the plan: ${planned.map((n) => n.name).join(', ')}`
  if (extra.length === 0 && missing.length === 0) return { status: 'pass', source, observed }
  const problems = [
    ...(extra.length ? [`etcd member${extra.length === 1 ? '' : 's'} ${extra.map((m) => m.name || `${hexId(m.id)} (unstarted)`).join(', ')} ${extra.length === 1 ? 'is' : 'are'} no control-plane node of the plan: this run would leave ${extra.length === 1 ? 'it' : 'them'} at the current version`] : []),
    ...(missing.length ? [`control-plane node${missing.length === 1 ? '' : 's'} ${missing.join(', ')} of the plan ${missing.length === 1 ? 'is' : 'are'} no member of this etcd`] : []),
  ]
  return { status: 'fail', source, observed, problem: `etcd has ${first.members.length} member${first.members.length === 1 ? '' : 's'} for ${planned.length} control-plane node${planned.length === 1 ? '' : 's'} in the plan: ${problems.join('; ')}` }
}

/** `https://10.0.0.1:2380`, `https://[fd00::1]:2380` → the host. */
function peerHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1')
  } catch {
    return undefined
  }
}

/** etcdctl prints member ids in decimal in JSON and in hex everywhere else (member remove takes hex). */
const hexId = (id: string): string => (/^\d+$/.test(id) ? BigInt(id).toString(16) : id)

/** One control-plane node's etcdctl output (the gate's script sections) → findings, the leader it sees, the members. */
export function judgeEtcdNode(node: string, stdout: string, maxDbSizeRatio: number): { findings: Finding[]; leader?: string; members?: EtcdMemberName[] } {
  const at = `node ${node}`
  const findings: Finding[] = []
  const s = sectionsOf(stdout)
  const health = s.get('health') ?? ''
  const healthy = /"health":\s*true/.test(health) && /rc=0\s*$/.test(health)
  findings.push(healthy
    ? { status: 'pass', source: `${at}: etcdctl endpoint health`, observed: clip(health.replace(/rc=\d+\s*$/, '')) }
    : { status: 'fail', source: `${at}: etcdctl endpoint health`, observed: clip(health.split('\n').filter((l) => !l.startsWith('{"level"')).join('\n')), problem: `${node}: etcd member unhealthy` })
  let leader: string | undefined
  const st = json<Status[]>(s.get('status'))?.[0]?.Status
  if (!st) findings.push({ status: healthy ? 'unknown' : 'fail', source: `${at}: etcdctl endpoint status`, observed: clip(s.get('status') ?? '') || 'no status', problem: `${node}: etcd status unreadable` })
  else {
    leader = String(st.leader)
    if (leader === '0') findings.push({ status: 'fail', source: `${at}: etcdctl endpoint status`, observed: 'leader 0', problem: `${node}: etcd member has no leader` })
    const quota = parseQuota(s.get('quota') ?? '')
    const ratio = st.dbSize / quota.bytes
    const observed = `DB ${humanBytes(st.dbSize)}${st.dbSizeInUse !== undefined ? ` (in use ${humanBytes(st.dbSizeInUse)})` : ''} of quota ${humanBytes(quota.bytes)} (${quota.source}) = ${(ratio * 100).toFixed(1)}%; leader ${leader}${String(st.header.member_id) === leader ? ' (this member)' : ''}`
    findings.push(ratio > maxDbSizeRatio
      ? { status: 'fail', source: `${at}: etcdctl endpoint status`, observed, problem: `${node}: etcd DB at ${(ratio * 100).toFixed(0)}% of its quota (max ${Math.round(maxDbSizeRatio * 100)}%)` }
      : { status: 'pass', source: `${at}: etcdctl endpoint status`, observed })
    if (st.isLearner) findings.push({ status: 'fail', source: `${at}: etcdctl endpoint status`, observed: 'isLearner true', problem: `${node}: etcd member is still a learner` })
  }
  const members = json<{ members?: { name?: string; ID: unknown; peerURLs?: string[] }[] }>(s.get('members'))?.members
  if (members) {
    const unstarted = members.filter((m) => !m.name)
    if (unstarted.length) findings.push({ status: 'fail', source: `${at}: etcdctl member list`, observed: `${unstarted.length} member(s) not started`, problem: `${node}: etcd has unstarted members` })
  }
  const alarms = (s.get('alarms') ?? '').split('\n').filter((l) => l.startsWith('memberID:'))
  if (alarms.length) findings.push({ status: 'fail', source: `${at}: etcdctl alarm list`, observed: alarms.join('; '), problem: `${node}: etcd alarm ${alarms.map((a) => a.split('alarm:')[1]).join(', ')}` })
  return { findings, ...(leader !== undefined ? { leader } : {}), ...(members ? { members: members.map((m) => ({ name: m.name ?? '', id: String(m.ID), ...(m.peerURLs?.[0] ? { peer: m.peerURLs[0] } : {}) })) } : {}) }
}

function sqlite(node: string, out: string): Finding[] {
  const size = /^\S+\s+\d+\s+\d+\s+\d+\s+(\d+)\s/m.exec(out.split('\n')[1] ?? '')?.[1]
  const df = /\s(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%\s+(\S+)\s*$/.exec(out.split('\n')[2] ?? '')
  const source = `node ${node}: k3s datastore ${K3S_SQLITE}`
  if (!df) return [{ status: 'unknown', source, observed: clip(out), problem: `${node}: SQLite datastore disk unreadable` }]
  const avail = Number(df[3])
  const observed = `SQLite datastore (no etcd): ${size ? humanBytes(Number(size)) : '?'}, ${humanBytes(avail)} free on ${df[5]}`
  // SQLite grows into free disk; leave room for it to double (WAL + vacuum) and some headroom.
  const need = Math.max(2 * Number(size ?? 0), 512 * 1024 ** 2)
  return [avail < need ? { status: 'fail', source, observed, problem: `${node}: only ${humanBytes(avail)} free next to the SQLite datastore` } : { status: 'pass', source, observed }]
}


/** The first line of the section that parses as JSON (etcdctl logs JSON warnings on stderr before its answer). */
function json<T>(text: string | undefined): T | undefined {
  for (const line of (text ?? '').split('\n')) {
    const t = line.trim()
    if (!t.startsWith('[') && !t.startsWith('{')) continue
    try {
      // Member ids are uint64: quote long numbers so they survive as exact strings.
      const v = JSON.parse(t.replace(/([:[,]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"')) as T & { level?: string }
      if (!(v && typeof v === 'object' && 'level' in v && 'msg' in v)) return v
    } catch {
      // not this line
    }
  }
  return undefined
}

export function parseQuota(text: string): { bytes: number; source: string } {
  const m = /quota-backend-bytes=(\d+)/.exec(text)
  return m && Number(m[1]) > 0 ? { bytes: Number(m[1]), source: '--quota-backend-bytes' } : { bytes: DEFAULT_QUOTA, source: 'etcd default' }
}
