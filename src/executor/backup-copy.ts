import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname, isAbsolute, join, posix, relative } from 'node:path'
import { OFF_NODE } from '../drivers/common/commands.js'
import { shellQuote } from '../transport/quote.js'
import type { NodeTarget, Transport } from '../transport/types.js'
import { StepFailure } from './run-program.js'

/**
 * A backup that lives only on the node it was taken on is lost with that node (issue 11: "copied off the node into
 * .kupgrade/backups/ with an index"). After a backup step, its files are read back over SSH — the checksum lists the
 * backup wrote name them — checked against those checksums here, and kept next to the plan with one index line per
 * backup. Files are base64 on the wire: the transport's output is text.
 */
export const backupsDir = (planDir: string): string => join(planDir, OFF_NODE)
export const backupIndexPath = (planDir: string): string => join(backupsDir(planDir), 'index.jsonl')

export interface CopiedFile {
  /** Where it is kept, relative to the plan's folder. */
  path: string
  /** Where it is on the node. */
  remote: string
  sha256: string
  bytes: number
}

/** One line of `.kupgrade/backups/index.jsonl`. */
export interface BackupIndexEntry {
  run: string
  cluster: string
  node: string
  hop?: number
  step: string
  /** The release the backup holds: the version the cluster ran before the hop. */
  version: string
  time: string
  /** The folder of this backup's copies, relative to the plan's folder. */
  dir: string
  /** The checksum lists on the node that named the files (kept beside them, at `dir` + the list's path). */
  sums: string[]
  files: CopiedFile[]
}

/** The node's side: each checksum list that exists, then each file it names, base64 on one line. */
export function backupReadScript(sums: readonly string[], marker: string): string {
  return [
    'set -e',
    'found=0',
    `for sums in ${sums.map(shellQuote).join(' ')}; do`,
    '  [ -f "$sums" ] || continue',
    '  found=1',
    `  printf '%s %s\\n' '${marker}-sums' "$sums"`,
    '  cat "$sums"',
    `  printf '\\n%s\\n' '${marker}-end'`,
    '  d=$(dirname "$sums")',
    // sha256sum lines: "<hex>  <path>" (binary mode: "<hex> *<path>"); a path relative to the list's own folder.
    '  while read -r sum path; do',
    '    [ -n "$sum" ] || continue',
    '    path=${path#\\*}',
    '    case "$path" in /*) f=$path ;; *) f="$d/${path#./}" ;; esac',
    `    printf '%s %s %s\\n' '${marker}-file' "$sum" "$f"`,
    '    base64 -w0 < "$f"',
    "    printf '\\n'",
    '  done < "$sums"',
    'done',
    `[ "$found" = 1 ] || { echo 'none of the checksum lists exists: ${sums.join(', ').replace(/'/g, '')}' >&2; exit 3; }`,
  ].join('\n')
}

export interface ReadBack {
  sums: { remote: string; text: string }[]
  files: { remote: string; sha256: string; data: Buffer }[]
}

/** Parses the script's output and checks every file against its checksum; throws naming the file that differs. */
export function parseBackupReadBack(stdout: string, marker: string, where: string): ReadBack {
  const out: ReadBack = { sums: [], files: [] }
  const lines = stdout.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.startsWith(`${marker}-sums `)) {
      const remote = line.slice(marker.length + 6)
      const body: string[] = []
      for (i++; i < lines.length && lines[i] !== `${marker}-end`; i++) body.push(lines[i]!)
      out.sums.push({ remote, text: `${body.join('\n').replace(/\n+$/, '')}\n` })
    } else if (line.startsWith(`${marker}-file `)) {
      const [, sha256 = '', ...rest] = line.split(' ')
      const remote = rest.join(' ')
      const data = Buffer.from(lines[++i] ?? '', 'base64')
      const got = createHash('sha256').update(data).digest('hex')
      if (got !== sha256.toLowerCase()) {
        throw new StepFailure(`the copy of ${remote} read from ${where} has sha256 ${got}, its checksum list says ${sha256}: the backup on the node is damaged or changed while it was read`, [])
      }
      out.files.push({ remote, sha256: got, data })
    }
  }
  if (out.sums.length === 0) throw new StepFailure(`no checksum list came back from ${where}`, [])
  return out
}

/** Reads a backup's files off the node and keeps them under `into` (mirroring their paths on the node), 0600 in 0700 folders. */
export async function copyBackupOffNode(ssh: Transport, target: NodeTarget, sums: readonly string[], into: string, planDir: string, signal?: AbortSignal): Promise<{ sums: string[]; files: CopiedFile[] }> {
  const marker = `@@kupgrade-${randomBytes(6).toString('hex')}`
  const where = `${target.cluster}/${target.node}`
  const r = await ssh.read(target, { script: backupReadScript(sums, marker) }, { privileged: true, timeoutMs: 30 * 60_000, ...(signal ? { signal } : {}) })
  const back = parseBackupReadBack(r.stdout, marker, where)
  const keep = (remote: string, data: Buffer | string): string => {
    if (!isAbsolute(remote) || posix.normalize(remote) !== remote) throw new StepFailure(`${where} named the backup file ${JSON.stringify(remote)}: not a plain absolute path, not copied`, [])
    const local = join(into, remote)
    mkdirSync(dirname(local), { recursive: true, mode: 0o700 })
    writeDurable(local, data)
    return local
  }
  for (const s of back.sums) keep(s.remote, s.text)
  return { sums: back.sums.map((s) => s.remote), files: back.files.map((f) => ({ path: relative(planDir, keep(f.remote, f.data)), remote: f.remote, sha256: f.sha256, bytes: f.data.length })) }
}

/** The newest copy of the backup a node took of `version` (the release it holds), from the index; undefined without one. */
export function findBackupCopy(planDir: string, cluster: string, node: string, version: string): BackupIndexEntry | undefined {
  let text: string
  try {
    text = readFileSync(backupIndexPath(planDir), 'utf8')
  } catch {
    return undefined
  }
  let found: BackupIndexEntry | undefined
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    let e: BackupIndexEntry
    try {
      e = JSON.parse(line) as BackupIndexEntry
    } catch {
      continue // a line cut by a crash while it was written: the entries before it stand
    }
    if (e.cluster === cluster && e.node === node && e.version === version && Array.isArray(e.sums)) found = e
  }
  return found
}

/** The node-side check that every file of a backup is there and intact: each list checked from its own folder. */
const checkOnNode = (sums: readonly string[]): string =>
  sums.map((l) => `(cd ${shellQuote(posix.dirname(l))} && sha256sum --check --quiet --strict ${shellQuote(posix.basename(l))}) >/dev/null 2>&1`).join(' && ')

/**
 * Before a restore: the backup must be on its node. Where the node lost or damaged it (a disk swapped, the folder
 * cleaned), the copies kept here are put back — each written beside its place and moved into it — and checked again
 * there. Returns the evidence lines: none when the node's own backup was intact.
 */
export async function putBackupBackOnNode(ssh: Transport, target: NodeTarget, planDir: string, entry: BackupIndexEntry, signal?: AbortSignal): Promise<string[]> {
  const where = `${target.cluster}/${target.node}`
  const opts = { privileged: true, ...(signal ? { signal } : {}) }
  const intact = async () => (await ssh.read(target, { script: checkOnNode(entry.sums) }, { ...opts, okExitCodes: [0, 1, 2] })).exitCode === 0
  if (await intact()) return []
  const local = (remote: string) => join(planDir, entry.dir, remote)
  const put = [...entry.sums, ...entry.files.map((f) => f.remote)]
  for (const remote of put) {
    const data = readFileSync(local(remote))
    const part = `${remote}.kupgrade-part`
    await ssh.mutate(target, `put the kept copy of ${remote} back on the node`, {
      script: ['set -e', 'umask 077', `mkdir -p ${shellQuote(posix.dirname(remote))}`, `base64 -d > ${shellQuote(part)}`, `mv -f ${shellQuote(part)} ${shellQuote(remote)}`].join('\n'),
    }, { ...opts, stdin: data.toString('base64'), timeoutMs: 30 * 60_000 })
  }
  if (!(await intact())) throw new StepFailure(`the backup put back on ${where} from ${entry.dir} still fails its checksums there`, [])
  return [`the backup on ${target.node} was missing or damaged: ${put.length} file(s) put back from ${entry.dir} (run ${entry.run}), checksums verified on the node`]
}

/** Appends one backup to the index, durably: a later restore looks here first. */
export function appendBackupIndex(planDir: string, entry: BackupIndexEntry): void {
  const file = backupIndexPath(planDir)
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  const fd = openSync(file, 'a', 0o600)
  try {
    writeSync(fd, `${JSON.stringify(entry)}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function writeDurable(file: string, data: Buffer | string): void {
  const fd = openSync(file, 'w', 0o600)
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
