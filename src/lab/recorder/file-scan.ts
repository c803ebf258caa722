import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Which files a node command changed, found by comparing the node root's distribution paths before and after it
 * (content and mode: a `touch`, as `apt-mark showhold` does to its state file, changes nothing). Cheaper and more dependable than inotify across hundreds of nodes: a scan is a few dozen
 * lstat calls. Only the paths where distributions keep their configuration, units and binaries are watched;
 * `lab/state` files stand for package state (apt holds, a staged OS upgrade).
 */
export const WATCHED_PATHS = [
  'etc/kubernetes', 'etc/rancher', 'etc/k0s', 'etc/systemd/system', 'etc/default', 'etc/sysconfig', 'etc/containerd',
  'etc/apt/sources.list.d', 'etc/yum.repos.d', 'usr/local/bin', 'usr/bin', 'var/lib/kubelet', 'var/lib/k0s/bin',
]
/** Package state the stand-ins keep in lab/state, and what it means in the node. */
export const PACKAGE_STATE: Record<string, string> = {
  'lab/state/apt-holds': '/var/lib/dpkg/status (apt-mark holds)',
  'lab/state/os-staged': '/var/lib/dpkg/status (OS upgrade)',
  'lab/state/os-updated': '/var/lib/dpkg/status (OS upgrade)',
}

const MAX_FILES = 5000
const MAX_DEPTH = 8

export interface FileChange {
  /** Path relative to the node root (`etc/rancher/k3s/config.yaml`, `lab/state/apt-holds`). */
  rel: string
  change: 'created' | 'modified' | 'deleted'
}

export class FileScan {
  private last = new Map<string, { stat: string; sig: string }>()

  constructor(private readonly root: string) {}

  /** Take the current state as the baseline (at start, and after the lab itself rewrote files). */
  baseline(): void {
    this.last = this.scan()
  }

  /** What changed since the last baseline or diff; the new state becomes the baseline. */
  diff(): FileChange[] {
    const now = this.scan()
    const out: FileChange[] = []
    for (const [rel, sig] of now) {
      const before = this.last.get(rel)
      if (before === undefined) out.push({ rel, change: 'created' })
      else if (before.sig !== sig.sig) out.push({ rel, change: 'modified' })
    }
    for (const rel of this.last.keys()) if (!now.has(rel)) out.push({ rel, change: 'deleted' })
    this.last = now
    return out.sort((a, b) => a.rel.localeCompare(b.rel))
  }

  private scan(): Map<string, { stat: string; sig: string }> {
    const map = new Map<string, { stat: string; sig: string }>()
    const visit = (rel: string, depth: number) => {
      if (map.size >= MAX_FILES) return
      let st
      try {
        // Most watched paths are another distribution's and absent: no exception (a stack trace) for each of them,
        // after every command on every node.
        st = lstatSync(join(this.root, rel), { throwIfNoEntry: false })
      } catch {
        return
      }
      if (st === undefined) return
      if (st.isDirectory()) {
        if (depth >= MAX_DEPTH) return
        let names: string[]
        try {
          names = readdirSync(join(this.root, rel))
        } catch {
          return
        }
        for (const n of names) visit(`${rel}/${n}`, depth + 1)
      } else {
        // Hash the content only when the file's stat changed since the last scan.
        const stat = `${st.mtimeMs}:${st.size}:${st.ino}:${st.mode}`
        const before = this.last.get(rel)
        map.set(rel, before?.stat === stat ? before : { stat, sig: `${st.mode}:${contentHash(join(this.root, rel), st.isSymbolicLink())}` })
      }
    }
    for (const p of [...WATCHED_PATHS, ...Object.keys(PACKAGE_STATE)]) visit(p, 0)
    return map
  }
}

function contentHash(file: string, link: boolean): string {
  try {
    return createHash('sha1').update(link ? `link:${readlinkSync(file)}` : readFileSync(file)).digest('hex')
  } catch {
    return 'unreadable'
  }
}
