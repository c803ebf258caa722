/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the text format (comments skipped, escaped label values, NaN/+Inf). Lines that do not parse are ignored. */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line)
    if (!m) continue
    const labels: Record<string, string> = {}
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4])
    out.push({ name: m[1]!, labels, value: v })
  }
  return out
}

/** Sum over all series of a metric (ip_family labels in newer kube-proxy); undefined when the metric is absent. */
export function sumOf(samples: Sample[], name: string): number | undefined {
  const s = samples.filter((x) => x.name === name)
  return s.length ? s.reduce((a, b) => a + b.value, 0) : undefined
}

export function maxOf(samples: Sample[], name: string): number | undefined {
  const s = samples.filter((x) => x.name === name)
  return s.length ? Math.max(...s.map((x) => x.value)) : undefined
}
