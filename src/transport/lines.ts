/** Splits a byte stream into complete lines for streaming logs; a partial last line is flushed at the end. */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let rest = ''
  return {
    push(chunk) {
      const text = rest + chunk.toString('utf8')
      const parts = text.split('\n')
      rest = parts.pop()!
      for (const p of parts) emit(p.replace(/\r$/, ''))
    },
    end() {
      if (rest !== '') emit(rest)
      rest = ''
    },
  }
}
