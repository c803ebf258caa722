/**
 * Splits what `kubectl get --watch -o json` prints — one pretty-printed JSON object per change, back to back — into
 * whole objects as the chunks arrive. Braces inside strings (an annotation holding JSON, a message with "{") do not
 * count; a chunk may end anywhere, even inside an escape.
 */
export class JsonObjectStream {
  private buf = ''
  private depth = 0
  private inString = false
  private escaped = false
  /** Where the object being read starts in `buf`, or -1 between objects. */
  private start = -1

  /** Feeds a chunk; returns the objects it completed, parsed. */
  push(chunk: string): unknown[] {
    const out: unknown[] = []
    const from = this.buf.length
    this.buf += chunk
    for (let i = from; i < this.buf.length; i++) {
      const ch = this.buf[i]
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (ch === '\\') this.escaped = true
        else if (ch === '"') this.inString = false
        continue
      }
      if (ch === '"') this.inString = true
      else if (ch === '{' || ch === '[') {
        if (this.depth++ === 0) this.start = i
      } else if ((ch === '}' || ch === ']') && this.depth > 0 && --this.depth === 0) {
        out.push(JSON.parse(this.buf.slice(this.start, i + 1)))
        this.buf = this.buf.slice(i + 1)
        i = -1
        this.start = -1
      }
    }
    // Text between objects (newlines) is never kept.
    if (this.depth === 0) this.buf = ''
    return out
  }
}
