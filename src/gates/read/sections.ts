/** Splits script output at `@@NAME` marker lines (fixed names chosen by the gate's own script). */
export function sectionsOf(text: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const chunk of text.split(/^@@/m).slice(1)) {
    const nl = chunk.indexOf('\n')
    m.set(chunk.slice(0, nl < 0 ? undefined : nl).trim(), nl < 0 ? '' : chunk.slice(nl + 1).trim())
  }
  return m
}
