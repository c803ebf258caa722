import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs'

/** Writes every byte: writeSync may write fewer than asked. */
export function writeAll(fd: number, bytes: Buffer): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at)
}

/**
 * Writes `data` to `file` and fsyncs it before returning: what kupgrade records (a journal, the backup index, a backup
 * copy) must be on disk before the next action relies on it. `flag`: 'w' replace, 'wx' create only, 'a' append.
 */
export function writeDurable(file: string, data: string | Buffer, o: { flag: 'w' | 'wx' | 'a'; mode?: number }): void {
  const fd = openSync(file, o.flag, o.mode)
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
