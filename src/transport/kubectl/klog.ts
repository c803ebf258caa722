/** klog's line header: severity, MMDD, time, thread id (`E1204 23:04:33.348208   30809 `). */
const HEADER = /^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ /

/**
 * kubectl logs the same klog line once per discovery attempt (five `memcache.go:265] "Unhandled Error" … couldn't get
 * current server API group list` before its one-line verdict), and an error shows stderr's last lines: repeats that
 * differ only in their time stamp are kept once, counted, so the verdict and what led to it both fit.
 */
export function collapseKlogRepeats(stderr: string): string {
  const out: string[] = []
  let lastKey: string | undefined
  let count = 0
  const flush = () => {
    if (count > 1) out[out.length - 1] += ` (${count} times)`
  }
  for (const line of stderr.split('\n')) {
    const m = HEADER.exec(line)
    const key = m ? `${m[1]}${line.slice(m[0].length)}` : undefined
    if (key !== undefined && key === lastKey) {
      count++
      continue
    }
    flush()
    out.push(line)
    lastKey = key
    count = 1
  }
  flush()
  return out.join('\n')
}
