import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const SSHD = '/usr/sbin/sshd'

export interface RealSshd {
  dir: string
  port: number
  /** Client private key (OpenSSH format) authorised for every user. */
  keyFile: string
  hostKeyLine: string
  stop(): Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
  })

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${log()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`sshd did not listen on ${port} within 5 s: ${log()}`)
}

/**
 * Debian's OpenSSH sshd on loopback with a private config, started as lab-findings describe: in its own mount
 * namespace with a tmpfs /run (sshd insists on /run/sshd), no PAM, StrictModes off for temp dirs, MaxStartups raised.
 */
export async function startSshd(o: { maxStartups?: string } = {}): Promise<RealSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'kupgrade-sshd-'))
  const keyFile = join(dir, 'id_ed25519')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_ed25519')])
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile])
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${keyFile}.pub`), { mode: 0o644 })
  // sshd reads AuthorizedKeysFile as the logging-in user: a non-root test login must be able to reach it.
  chmodSync(dir, 0o755)
  const port = await freePort()
  const config = join(dir, 'sshd_config')
  writeFileSync(config, [
    'ListenAddress 127.0.0.1',
    `Port ${port}`,
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    `MaxStartups ${o.maxStartups ?? '100:30:200'}`,
    'MaxSessions 10',
    'AcceptEnv LAB_*',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n'))
  let stderr = ''
  const child = spawn('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', `mount -t tmpfs tmpfs /run && mkdir /run/sshd && exec ${SSHD} -D -e -f ${config}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  child.stderr!.on('data', (d) => (stderr += String(d)))
  await waitForPort(port, child, () => stderr)
  return {
    dir,
    port,
    keyFile,
    hostKeyLine: readFileSync(join(dir, 'host_ed25519.pub'), 'utf8').trim(),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
