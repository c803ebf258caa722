import { appendFileSync } from 'node:fs'

/** journalctl's default "short" format: `Nov 21 13:08:33 cp-1 k3s[1234]: message`. */
export function journalLine(node: string, ident: string, pid: number, message: string, at = new Date()): string {
  const month = at.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' })
  const day = String(at.getUTCDate()).padStart(2, '0')
  const time = at.toISOString().slice(11, 19)
  return `${month} ${day} ${time} ${node} ${ident}[${pid}]: ${message}\n`
}

/** klog's header: `E1121 13:08:33.123456    1234 proxier.go:1598] `. */
export function klogPrefix(level: 'I' | 'E' | 'W', pid: number, source: string, at = new Date()): string {
  const mm = String(at.getUTCMonth() + 1).padStart(2, '0')
  const dd = String(at.getUTCDate()).padStart(2, '0')
  const t = at.toISOString().slice(11, 23) + '000'
  return `${level}${mm}${dd} ${t} ${String(pid).padStart(7)} ${source}] `
}

export const append = (file: string, text: string): void => appendFileSync(file, text)

/** The pid the node's Kubernetes service shows in logs and `systemctl status` (LAB_PID for the stand-ins): stable per
 *  node, so the journal lines the lab writes and the ones the stand-ins write name the same process. */
export function servicePid(node: string): number {
  let h = 0
  for (const ch of node) h = (h * 31 + ch.charCodeAt(0)) % 30000
  return 1000 + h
}
