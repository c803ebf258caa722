import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs'
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
export async function copyBackupOffNode(ssh: Transport, target: NodeTarget, sums: readonly string[], into: string, planDir: string, signal?: AbortSignal): Promise<CopiedFile[]> {
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
  return back.files.map((f) => ({ path: relative(planDir, keep(f.remote, f.data)), remote: f.remote, sha256: f.sha256, bytes: f.data.length }))
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
