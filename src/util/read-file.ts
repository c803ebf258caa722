import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'

/**
 * Files named by users (plans, identity files, known_hosts, kubeconfigs) are read only when they are regular files of
 * a sane size, and never more than that size is read: `/dev/zero` as a plan or an identity file grew without limit
 * until the kernel killed kupgrade, and a FIFO blocked it forever. The file is opened non-blocking (opening a FIFO
 * with no writer would otherwise wait) and judged by fstat of that same descriptor, so nothing can be swapped between
 * the check and the read.
 */
export class FileReadError extends Error {
  constructor(
    readonly path: string,
    /** A few words for "cannot read X (reason)": "no such file", "a FIFO, not a regular file", "larger than 16 MiB". */
    readonly reason: string,
    readonly code?: string,
  ) {
    super(`${path}: ${reason}`)
    this.name = 'FileReadError'
  }
}

export const MiB = 1024 * 1024

export interface ReadLimit {
  /** Refuse files larger than this. */
  maxBytes: number
}

/** Reads a whole regular file of at most `maxBytes`; throws FileReadError saying why not. */
export function readRegularFile(path: string, limit: ReadLimit): Buffer {
  const fd = openChecked(path, limit)
  try {
    // Read one byte past the limit: a file that grew since fstat (or lied about its size, as /proc files do) is
    // still refused rather than read without end.
    const buf = Buffer.alloc(Math.min(limit.maxBytes, sizeHint(fd)) + 1)
    let total = 0
    let chunk: Buffer = buf
    for (;;) {
      if (total === chunk.length) {
        if (chunk.length > limit.maxBytes) throw new FileReadError(path, `larger than ${sizeText(limit.maxBytes)}`)
        const bigger = Buffer.alloc(Math.min(chunk.length * 2, limit.maxBytes + 1))
        chunk.copy(bigger, 0, 0, total)
        chunk = bigger
      }
      const n = readSync(fd, chunk, total, chunk.length - total, null)
      if (n === 0) break
      total += n
    }
    if (total > limit.maxBytes) throw new FileReadError(path, `larger than ${sizeText(limit.maxBytes)}`)
    return chunk.subarray(0, total)
  } finally {
    closeSync(fd)
  }
}

export const readRegularText = (path: string, limit: ReadLimit): string => readRegularFile(path, limit).toString('utf8')

/** Checks, without reading, that a file another program will read (kubectl's kubeconfig) is a regular file of a sane size. */
export function checkRegularFile(path: string, limit: ReadLimit): void {
  closeSync(openChecked(path, limit))
}

function openChecked(path: string, limit: ReadLimit): number {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new FileReadError(path, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? String(err), code)
  }
  try {
    const st = fstatSync(fd)
    const kind = notRegular(st)
    if (kind) throw new FileReadError(path, `${kind}, not a regular file`, 'ENOTREG')
    if (st.size > limit.maxBytes) throw new FileReadError(path, `larger than ${sizeText(limit.maxBytes)} (${sizeText(st.size)})`, 'EFBIG')
    return fd
  } catch (err) {
    closeSync(fd)
    throw err
  }
}

const sizeHint = (fd: number): number => fstatSync(fd).size

function notRegular(st: Stats): string | undefined {
  if (st.isFile()) return undefined
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a FIFO'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  return 'not a file'
}

const sizeText = (bytes: number): string =>
  bytes >= MiB ? `${Number((bytes / MiB).toFixed(1))} MiB` : bytes >= 1024 ? `${Number((bytes / 1024).toFixed(1))} KiB` : `${bytes} bytes`
