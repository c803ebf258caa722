import { homedir, userInfo } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { KupgradeError } from '../../errors.js'
import { FileReadError, MiB, readRegularText } from '../../util/read-file.js'
import SSHConfig from 'ssh-config'
import type { NodeTarget } from '../types.js'

/** A NodeTarget with every field settled: what the pool actually connects to. */
export interface ResolvedTarget {
  cluster?: string
  node: string
  /** The name in the plan (the ~/.ssh/config alias); `host` is what HostName turned it into. */
  alias: string
  host: string
  port: number
  user: string
  identityFiles: string[]
  /** Explicitly configured identity files must exist; defaults are tried only when present. */
  identityExplicit: boolean
  knownHosts: string
  sudo: boolean
  /** Bastions, outermost first. */
  jumps: string[]
}

export interface SshConfigSource {
  /** Parsed ~/.ssh/config, or undefined when there is none. */
  config?: SSHConfig
  home: string
}

export function loadSshConfig(file: string | undefined = join(homedir(), '.ssh', 'config'), home = homedir()): SshConfigSource {
  if (file === undefined) return { home }
  let text: string
  try {
    // Bounded, regular files only, like every file kupgrade reads for SSH: a FIFO here would hang every connection.
    text = readRegularText(file, { maxBytes: 4 * MiB })
  } catch (err) {
    if (err instanceof FileReadError && err.code === 'ENOENT') return { home }
    throw new KupgradeError(`cannot read ssh config ${file}: ${err instanceof FileReadError ? err.reason : (err as Error).message}`)
  }
  return { config: SSHConfig.parse(text), home }
}

const expandHome = (p: string, home: string) => (p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : p)

/** OpenSSH's tokens that make sense here: %h (host), %p (port), %r (remote user), %u (local user), %d (home), %%. */
function expandTokens(s: string, t: { h: string; p: number; r: string; home: string }): string {
  return s.replace(/%([hprud%])/g, (_, c: string) =>
    c === 'h' ? t.h : c === 'p' ? String(t.p) : c === 'r' ? t.r : c === 'u' ? userInfo().username : c === 'd' ? t.home : '%',
  )
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v)
const many = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])

/**
 * Merges plan values with ~/.ssh/config for one host: plan values win (as `ssh -o` does over the config file),
 * config values fill the gaps, then OpenSSH's defaults. Match `exec` is never evaluated: a config file should not
 * make kupgrade run commands.
 */
export function resolveTarget(t: NodeTarget, src: SshConfigSource, defaultIdentities: () => string[]): ResolvedTarget {
  const computed = src.config
    ? src.config.compute(t.user ? { Host: t.host, User: t.user } : { Host: t.host }, { matchExec: false, ignoreCase: true })
    : {}
  const host = t.host
  const hostName = expandTokens(one(computed.hostname) ?? host, { h: host, p: 22, r: '', home: src.home })
  const port = t.port ?? (one(computed.port) !== undefined ? Number(one(computed.port)) : 22)
  const user = t.user ?? one(computed.user) ?? userInfo().username
  const tok = { h: hostName, p: port, r: user, home: src.home }
  const fromConfig = many(computed.identityfile).map((f) => expandHome(expandTokens(f, tok), src.home))
  const identityFiles = t.identityFiles?.length ? t.identityFiles : fromConfig.length ? fromConfig : defaultIdentities()
  const knownHosts = t.knownHosts ?? expandHome(one(computed.userknownhostsfile)?.split(/\s+/)[0] ?? '~/.ssh/known_hosts', src.home)
  const jump = t.proxyJump ?? one(computed.proxyjump)
  return {
    ...(t.cluster ? { cluster: t.cluster } : {}),
    node: t.node,
    alias: host,
    host: hostName,
    port,
    user,
    identityFiles: identityFiles.map((f) => (isAbsolute(f) ? f : join(src.home, f))),
    identityExplicit: Boolean(t.identityFiles?.length || fromConfig.length),
    knownHosts,
    sudo: Boolean(t.sudo) && user !== 'root',
    jumps: jump && jump.toLowerCase() !== 'none' ? jump.split(',').map((j) => j.trim()).filter(Boolean) : [],
  }
}

/** `[user@]host[:port]` (ProxyJump syntax; `ssh://` URIs too) → parts. */
export function parseJump(spec: string): { user?: string; host: string; port?: number } {
  const s = spec.replace(/^ssh:\/\//, '')
  const at = s.lastIndexOf('@')
  const user = at >= 0 ? s.slice(0, at) : undefined
  const rest = at >= 0 ? s.slice(at + 1) : s
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]+)(?::(\d+))?$/.exec(rest)
  if (!m) throw new Error(`bad ProxyJump host: ${spec}`)
  return { ...(user ? { user } : {}), host: m[1]!, ...(m[2] ? { port: Number(m[2]) } : {}) }
}
