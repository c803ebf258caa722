import { isIP } from 'node:net'

/**
 * Names and hosts end up in shell commands, file names and kubectl arguments. Restricting them to DNS-1123 labels
 * (stages, clusters) or subdomains (nodes, as Kubernetes node names may be FQDNs), and hosts to hostnames or IP
 * addresses, means no hostile string from a plan can ever reach a shell, even before quoting.
 */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
export const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$/

export const isDnsLabel = (s: string): boolean => DNS1123_LABEL.test(s)
export const isDnsSubdomain = (s: string): boolean => DNS1123_SUBDOMAIN.test(s)
export const isHost = (s: string): boolean => isIP(s) !== 0 || (HOSTNAME.test(s) && !/^\d+(\.\d+)*$/.test(s))

/** Why a name is not DNS-1123, in a few words: the first rule it breaks. */
function nameProblem(value: string, max: number, dots: boolean): string | undefined {
  if (value.length > max) return `it is ${value.length} characters long`
  if (/[A-Z]/.test(value)) return 'it has upper-case letters'
  const bad = [...value].find((c) => !/[a-z0-9-]/.test(c) && !(dots && c === '.'))
  if (bad !== undefined) return `it contains ${JSON.stringify(bad)}`
  if (/^[-.]/.test(value)) return `it starts with "${value[0]}"`
  if (/[-.]$/.test(value)) return `it ends with "${value[value.length - 1]}"`
  if (dots && /\.\.|\.-|-\./.test(value)) return 'a part between dots starts or ends with "-" or is empty'
  return undefined
}

const because = (why: string | undefined): string => (why ? ` (${why})` : '')
/** Quotes a name for a message, shortening a very long one. */
const show = (value: string): string => (value.length > 70 ? `${JSON.stringify(value.slice(0, 60))}…` : JSON.stringify(value))

export const labelMessage = (what: string, value: string): string =>
  `${what} ${show(value)} is not a DNS-1123 label${because(nameProblem(value, 63, false))}: use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit`
export const subdomainMessage = (what: string, value: string): string =>
  `${what} ${show(value)} is not a DNS-1123 subdomain${because(nameProblem(value, 253, true))}: use lower-case letters, digits, '-' and '.', at most 253 characters, each part starting and ending with a letter or digit`
