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

export const labelMessage = (what: string, value: string): string =>
  `${what} ${JSON.stringify(value)} is not a DNS-1123 label: use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit`
export const subdomainMessage = (what: string, value: string): string =>
  `${what} ${JSON.stringify(value)} is not a DNS-1123 subdomain: use lower-case letters, digits, '-' and '.', at most 253 characters`
