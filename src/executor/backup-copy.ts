import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { dirname, isAbsolute, join, posix, relative } from 'node:path'
import { OFF_NODE } from '../drivers/common/commands.js'
import { shellQuote } from '../transport/quote.js'
import type { ReadsBackup } from '../drivers/program.js'
import type { NodeTarget, Transport } from '../transport/types.js'
import { StepFailure } from './run-program.js'
import { writeAll, writeDurable } from '../util/durable.js'

/**
 * A backup that lives only on the node it was taken on is lost with that node (issue 11: "copied off the node into
 * .kupgrade/backups/ with an index"). After a backup step, its files are read back over SSH — the checksum lists the
 * backup wrote name them — checked against those checksums here, and kept next to the plan with one index line per
 * backup. Files are base64 on the wire (the transport's output is text), in pieces.
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
  /** Its permission bits on the node (octal), given back when it is put back; the copy here is 0600 whatever they were. */
  mode: string
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

/**
 * Files cross the wire in pieces of this many MiB (base64 on one line each): an etcd snapshot of a big cluster runs to
 * gigabytes, far past what one string may hold.
 */
export const CHUNK_MIB = 32

/**
 * The node's side, first pass: each checksum list that exists, each file it names, then the size and mode of every
 * named file from one `stat` (a file that is gone has no line there).
 */
export function backupManifestScript(sums: readonly string[], marker: string): string {
  return [
    'set -e',
    'found=0',
    'set --',
    `for sums in ${sums.map(shellQuote).join(' ')}; do`,
    '  [ -f "$sums" ] || continue',
    '  found=1',
    `  printf '%s %s\\n' '${marker}-sums' "$sums"`,
    '  cat "$sums"',
    `  printf '\\n%s\\n' '${marker}-end'`,
    '  d=${sums%/*}',
    // sha256sum lines: "<hex>  <path>" (binary mode: "<hex> *<path>"); a path relative to the list's own folder.
    '  while read -r sum path; do',
    '    [ -n "$sum" ] || continue',
    '    path=${path#\\*}',
    '    case "$path" in /*) f=$path ;; *) f="$d/${path#./}" ;; esac',
    `    printf '%s %s %s\\n' '${marker}-file' "$sum" "$f"`,
    '    set -- "$@" "$f"',
    '  done < "$sums"',
    'done',
    `[ "$found" = 1 ] || { echo 'none of the checksum lists exists: ${sums.join(', ').replace(/'/g, '')}' >&2; exit 3; }`,
    // -L: the file a link names, as a copy reads it. A list's lines cannot hold a newline, so neither can %n.
    `[ "$#" = 0 ] || stat -L -c '${marker}-stat %s %a %n' -- "$@" 2>/dev/null || true`,
  ].join('\n')
}

export interface BackupManifest {
  sums: { remote: string; text: string }[]
  files: { remote: string; sha256: string; bytes: number; mode: string }[]
}

export function parseBackupManifest(stdout: string, marker: string, where: string): BackupManifest {
  const out: BackupManifest = { sums: [], files: [] }
  const stats = new Map<string, { bytes: number; mode: string }>()
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
      out.files.push({ remote: rest.join(' '), sha256: sha256.toLowerCase(), bytes: Number.NaN, mode: '' })
    } else if (line.startsWith(`${marker}-stat `)) {
      const [, size = '', mode = '', ...rest] = line.split(' ')
      stats.set(rest.join(' '), { bytes: Number(size), mode })
    }
  }
  for (const f of out.files) Object.assign(f, stats.get(f.remote))
  if (out.sums.length === 0) throw new StepFailure(`no checksum list came back from ${where}`, [])
  for (const f of out.files) {
    if (!/^[0-9a-f]{64}$/.test(f.sha256) || !Number.isSafeInteger(f.bytes) || !/^[0-7]{3,4}$/.test(f.mode)) throw new StepFailure(`${where} listed the backup file ${JSON.stringify(f.remote)} without a sha256, size and mode`, [])
    if (!isAbsolute(f.remote) || posix.normalize(f.remote) !== f.remote) throw new StepFailure(`${where} named the backup file ${JSON.stringify(f.remote)}: not a plain absolute path, not copied`, [])
  }
  return out
}

/** One piece of a file, base64 on one line: `dd` seeks to it, so a piece costs its own size whatever the offset. */
export const chunkReadScript = (remote: string, chunk: number, chunkMiB = CHUNK_MIB): string =>
  `set -e; dd if=${shellQuote(remote)} bs=1048576 skip=${chunk * chunkMiB} count=${chunkMiB} 2>/dev/null | base64 -w0`

/**
 * Several whole files in one command, each base64 on the line after its own marker line (a file that cannot be read
 * comes back empty, and its checksum then refuses it): a kubeadm backup is some thirty small files, and a command per
 * file was a round trip per file.
 */
export const batchReadScript = (remotes: readonly string[], marker: string): string =>
  remotes.map((r, i) => `printf '%s\\n' '${marker}-${i}'; base64 -w0 -- ${shellQuote(r)} 2>/dev/null; echo`).join('\n')

export function parseBatchRead(stdout: string, marker: string, count: number): Buffer[] {
  const lines = stdout.split('\n')
  const out: Buffer[] = []
  for (let i = 0, at = 0; i < count; i++) {
    at = lines.indexOf(`${marker}-${i}`, at)
    out.push(at < 0 ? Buffer.alloc(0) : Buffer.from(lines[at + 1] ?? '', 'base64'))
    if (at < 0) at = 0
  }
  return out
}

/**
 * Reads a backup's files off the node and keeps them under `into` (mirroring their paths on the node), 0600 in 0700
 * folders, each checked against the sha256 its list gives before it takes its name. Files up to a piece's size are
 * read together, as many as fit in one piece; a bigger one is read piece by piece.
 */
export async function copyBackupOffNode(ssh: Transport, target: NodeTarget, sums: readonly string[], into: string, planDir: string, signal?: AbortSignal, chunkMiB = CHUNK_MIB): Promise<{ sums: string[]; files: CopiedFile[] }> {
  const marker = `@@kupgrade-${randomBytes(6).toString('hex')}`
  const where = `${target.cluster}/${target.node}`
  const opts = { privileged: true, timeoutMs: 10 * 60_000, ...(signal ? { signal } : {}) }
  const manifest = parseBackupManifest((await ssh.read(target, { script: backupManifestScript(sums, marker) }, opts)).stdout, marker, where)
  const localOf = (remote: string): string => {
    const local = join(into, remote)
    mkdirSync(dirname(local), { recursive: true, mode: 0o700 })
    return local
  }
  for (const l of manifest.sums) writeDurable(localOf(l.remote), l.text, { flag: 'w', mode: 0o600 })
  const files: CopiedFile[] = []
  /** Keeps one file from its pieces (`piece(n)` empty past its end), checked before it takes its name. */
  const keep = async (f: BackupManifest['files'][number], piece: (n: number) => Promise<Buffer>): Promise<void> => {
    const local = localOf(f.remote)
    const part = `${local}.kupgrade-part`
    const hash = createHash('sha256')
    const fd = openSync(part, 'w', 0o600)
    let bytes = 0
    try {
      for (let chunk = 0; chunk === 0 || bytes < f.bytes; chunk++) {
        const data = await piece(chunk)
        if (data.length === 0) break
        hash.update(data)
        writeAll(fd, data)
        bytes += data.length
      }
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    const got = hash.digest('hex')
    if (got !== f.sha256 || bytes !== f.bytes) {
      rmSync(part, { force: true })
      const what = bytes !== f.bytes ? `is ${bytes} bytes, the file ${f.bytes}` : `has sha256 ${got}, its checksum list says ${f.sha256}`
      throw new StepFailure(`the copy of ${f.remote} read from ${where} ${what}: the backup on the node is damaged or changed while it was read`, [])
    }
    renameSync(part, local)
    files.push({ path: relative(planDir, local), remote: f.remote, sha256: got, bytes, mode: f.mode })
  }
  const size = chunkMiB * 1024 * 1024
  let batch: BackupManifest['files'] = []
  let batchBytes = 0
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    const read = (await ssh.read(target, { script: batchReadScript(batch.map((f) => f.remote), marker) }, opts)).stdout
    const data = parseBatchRead(read, marker, batch.length)
    const kept = batch
    batch = []
    batchBytes = 0
    for (const [i, f] of kept.entries()) await keep(f, async (n) => (n === 0 ? data[i]! : Buffer.alloc(0)))
  }
  for (const f of manifest.files.filter((m) => m.bytes <= size)) {
    if (batchBytes + f.bytes > size) await flush()
    batch.push(f)
    batchBytes += f.bytes
  }
  await flush()
  for (const f of manifest.files.filter((m) => m.bytes > size)) {
    await keep(f, async (n) => Buffer.from((await ssh.read(target, { script: chunkReadScript(f.remote, n, chunkMiB) }, opts)).stdout.trim(), 'base64'))
  }
  return { sums: manifest.sums.map((l) => l.remote), files }
}

/** Every backup the index lists, oldest first; none when nothing was copied yet. */
export function readBackupIndex(planDir: string): BackupIndexEntry[] {
  let text: string
  try {
    text = readFileSync(backupIndexPath(planDir), 'utf8')
  } catch {
    return []
  }
  const out: BackupIndexEntry[] = []
  for (const line of text.split('\n')) {
    if (!line.trim()) continue
    try {
      const e = JSON.parse(line) as BackupIndexEntry
      if (Array.isArray(e.sums)) out.push(e)
    } catch {
      // a line cut by a crash while it was written: the entries before it stand
    }
  }
  return out
}

/**
 * The copies of what a node backed up of `version` (the release it holds) in the newest run that copied any: its
 * snapshot and its kept files are separate entries. Empty without one.
 */
export function findBackupCopies(planDir: string, cluster: string, node: string, version: string): BackupIndexEntry[] {
  const mine = readBackupIndex(planDir).filter((e) => e.cluster === cluster && e.node === node && e.version === version)
  const run = mine.at(-1)?.run
  // The newest entry per step of that run (a resumed run may have copied a step twice).
  return [...new Map(mine.filter((e) => e.run === run).map((e) => [e.step, e])).values()]
}

/**
 * The copies a restore step's backup reads (ReadsBackup): the node's own backups of that release, or, from another
 * node's (kubeadm: the etcd snapshot the first control-plane node took, which every member restores from), only the
 * backups made of the named files — never that node's own kept configuration.
 */
export function backupCopiesFor(planDir: string, cluster: string, node: string, reads: ReadsBackup): BackupIndexEntry[] {
  if (!reads.from) return findBackupCopies(planDir, cluster, node, reads.release)
  const paths = new Set(reads.from.paths)
  return findBackupCopies(planDir, cluster, reads.from.node, reads.release).filter((e) => e.files.every((f) => paths.has(f.remote)) && e.sums.every((l) => paths.has(l)))
}

/** The node-side check that every file of a backup is there and intact: each list checked from its own folder. */
const checkOnNode = (sums: readonly string[]): string =>
  sums.map((l) => `(cd ${shellQuote(posix.dirname(l))} && sha256sum --check --quiet --strict ${shellQuote(posix.basename(l))}) >/dev/null 2>&1`).join(' && ')

/**
 * Before a restore: the backup must be on its node. Where the node lost or damaged it (a disk swapped, the folder
 * cleaned), the copies kept here are put back — each written beside its place in pieces and moved into it — and
 * checked again there. Returns the evidence lines: none when the node's own backup was intact.
 */
export async function putBackupBackOnNode(ssh: Transport, target: NodeTarget, planDir: string, entry: BackupIndexEntry, signal?: AbortSignal, chunkMiB = CHUNK_MIB): Promise<string[]> {
  const where = `${target.cluster}/${target.node}`
  const opts = { privileged: true, ...(signal ? { signal } : {}) }
  const intact = async () => (await ssh.read(target, { script: checkOnNode(entry.sums) }, { ...opts, okExitCodes: [0, 1, 2] })).exitCode === 0
  if (await intact()) return []
  const put = [...entry.sums, ...entry.files.map((f) => f.remote)]
  // A kept file as it was (a binary stays executable); checksum lists as the backup step wrote them (umask 022).
  const modeOf = new Map(entry.files.map((f) => [f.remote, /^[0-7]{3,4}$/.test(f.mode) ? f.mode : '600']))
  const size = chunkMiB * 1024 * 1024
  for (const remote of put) {
    const data = readFileSync(join(planDir, entry.dir, remote))
    const part = `${remote}.kupgrade-part`
    for (let at = 0, n = 0; at === 0 || at < data.length; at += size, n++) {
      const last = at + size >= data.length
      await ssh.mutate(target, `put the kept copy of ${remote} back on the node${data.length > size ? ` (piece ${n + 1})` : ''}`, {
        script: [
          'set -e', 'umask 077',
          ...(at === 0 ? [`mkdir -p ${shellQuote(posix.dirname(remote))}`] : []),
          `base64 -d ${at === 0 ? '>' : '>>'} ${shellQuote(part)}`,
          ...(last ? [`chmod ${modeOf.get(remote) ?? '644'} ${shellQuote(part)}`, `mv -f ${shellQuote(part)} ${shellQuote(remote)}`] : []),
        ].join('\n'),
      }, { ...opts, stdin: data.subarray(at, at + size).toString('base64'), timeoutMs: 10 * 60_000 })
    }
  }
  if (!(await intact())) throw new StepFailure(`the backup put back on ${where} from ${entry.dir} still fails its checksums there`, [])
  return [`${entry.step} on ${target.node} was missing or damaged: ${put.length} file(s) put back from ${entry.dir} (run ${entry.run}), checksums verified on the node`]
}

/** Appends one backup to the index, durably: a later restore looks here first. */
export function appendBackupIndex(planDir: string, entry: BackupIndexEntry): void {
  const file = backupIndexPath(planDir)
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
  writeDurable(file, `${JSON.stringify(entry)}\n`, { flag: 'a', mode: 0o600 })
}
