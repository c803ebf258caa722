import { closeSync, openSync, readSync, statSync, watch, writeFileSync, existsSync, type FSWatcher } from 'node:fs'

/**
 * Follows the node's event file (JSON lines the stand-ins append): fs.watch for promptness — a `reboot` must be seen
 * while its exec is still running — plus an explicit poll after every exec, so nothing depends on inotify alone.
 */
export class EventTail {
  private offset = 0
  private partial = ''
  private watcher?: FSWatcher

  constructor(
    private readonly file: string,
    private readonly onEvent: (event: Record<string, unknown>) => void,
  ) {}

  start(): void {
    if (!existsSync(this.file)) writeFileSync(this.file, '')
    // Events written while the node was stopped describe a past the lab no longer tracks: start at the end.
    this.offset = statSync(this.file).size
    this.watcher = watch(this.file, () => this.poll())
    this.watcher.on('error', () => undefined)
  }

  stop(): void {
    this.watcher?.close()
    this.watcher = undefined
  }

  poll(): void {
    let size: number
    try {
      size = statSync(this.file).size
    } catch {
      return
    }
    if (size < this.offset) this.offset = 0 // truncated (node root reset): start over
    if (size === this.offset) return
    const fd = openSync(this.file, 'r')
    try {
      const buf = Buffer.alloc(size - this.offset)
      const n = readSync(fd, buf, 0, buf.length, this.offset)
      this.offset += n
      const text = this.partial + buf.subarray(0, n).toString('utf8')
      const lines = text.split('\n')
      this.partial = lines.pop() ?? ''
      for (const line of lines) {
        if (!line.trim()) continue
        try {
          this.onEvent(JSON.parse(line) as Record<string, unknown>)
        } catch {
          // A malformed line from a stand-in is a lab bug, not a reason to stop following the file.
        }
      }
    } finally {
      closeSync(fd)
    }
  }
}
