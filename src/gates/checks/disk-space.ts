import { parseDf } from '../../facts/parse-host.js'
import { shellQuote } from '../../transport/quote.js'
import { nodesInScope } from '../context.js'
import { humanBytes, parseSize, verdict, type Finding } from '../evidence.js'
import { readNode, SCRIPT_ENV } from '../read/node.js'
import type { Gate } from '../types.js'

export interface DiskSpaceParams { minFree: string; minFreeBytes: string; paths: string[] }

/**
 * Free space on each path, against a percentage (or size) and an absolute floor (incident k3s-expired-certs-disk-full:
 * logs filled the disk). "Free" is what an unprivileged writer gets (df's Available, after the root reserve), as
 * container images and logs are written. One `df -P -B1 PATH` per path so a missing path cannot shift the rows.
 */
export const diskSpaceGate: Gate<DiskSpaceParams> = {
  id: 'disk-space',
  async check(ctx, p) {
    const pct = p.minFree.endsWith('%') ? Number(p.minFree.slice(0, -1)) : undefined
    const floor = Math.max(pct === undefined ? parseSize(p.minFree) : 0, parseSize(p.minFreeBytes))
    const findings: Finding[] = []
    await Promise.all(nodesInScope(ctx).map(async (n) => {
      const script = [SCRIPT_ENV, `for p in ${p.paths.map(shellQuote).join(' ')}; do printf 'path\\t%s\\n' "$p"; df -P -B1 "$p" 2>&1; done`].join('\n')
      const r = await readNode(ctx, n.target, { script })
      if (r.error) return void findings.push({ status: 'unknown', source: `node ${n.name}`, observed: r.error, problem: `${n.name} unreachable over SSH` })
      for (const [path, out] of sections(r.stdout)) {
        const source = `node ${n.name}: df -P -B1 ${path}`
        const d = parseDf(out, [path])[0]
        if (!d) {
          findings.push(/No such file or directory/.test(out)
            ? { status: 'warn', source, observed: out.trim(), problem: `${n.name}: ${path} does not exist` }
            : { status: 'unknown', source, observed: out.trim() || 'no output', problem: `${n.name}: df ${path} unreadable` })
          continue
        }
        const size = d.usedBytes + d.availableBytes
        const freePct = size > 0 ? (100 * d.availableBytes) / size : 0
        const observed = `${path} on ${d.mount}: ${humanBytes(d.availableBytes)} free of ${humanBytes(size)} (${freePct.toFixed(1)}% free)`
        const short = (pct !== undefined && freePct < pct) || d.availableBytes < floor
        findings.push(short
          ? { status: 'fail', source, observed: `${observed}; needs ≥ ${pct !== undefined ? `${pct}% and ` : ''}${humanBytes(floor)}`, problem: `${n.name} ${path}: only ${humanBytes(d.availableBytes)} (${freePct.toFixed(1)}%) free` }
          : { status: 'pass', source, observed })
      }
    }))
    return verdict('disk-space', findings, {
      ok: `${p.paths.join(', ')} have ≥ ${p.minFree} and ≥ ${p.minFreeBytes} free on every node`,
      hint: 'free space first: old container images (crictl rmi --prune), journald (journalctl --vacuum-size), rotated logs; an upgrade pulls new images',
    })
  },
}

function sections(text: string): [string, string][] {
  const out: [string, string][] = []
  for (const chunk of text.split(/^path\t/m).slice(1)) {
    const nl = chunk.indexOf('\n')
    out.push([chunk.slice(0, nl < 0 ? undefined : nl), nl < 0 ? '' : chunk.slice(nl + 1)])
  }
  return out
}
