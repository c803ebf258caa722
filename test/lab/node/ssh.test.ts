import { execFile, spawn } from 'node:child_process'
import { writeFileSync, chmodSync, readFileSync, mkdtempSync, rmSync, existsSync, readdirSync, statSync, openSync, readSync, closeSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import ssh2 from 'ssh2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LabNode, generateEd25519KeyPair } from '../../../src/lab/node/index.js'
import { clientKey, freshAddress, recordEvents, sshExec, startNode, type TestNode } from './helpers.js'

const run = promisify(execFile)

describe('lab node sshd', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ users: [{ name: 'ops', sudo: true }, { name: 'guest', sudo: false }] })
  })
  afterAll(async () => t?.cleanup())

  it('runs commands in real bash with separate stdout, stderr, exit code and stdin', async () => {
    const r = await sshExec(t.node, 'echo out; echo err >&2; read line; echo "got $line"; exit 7', { stdin: 'hello\n' })
    expect(r).toEqual({ stdout: 'out\ngot hello\n', stderr: 'err\n', code: 7 })
    expect((await sshExec(t.node, 'echo $BASH_VERSION')).stdout).toMatch(/^5\./)
  })

  it('shows the node root at the real absolute paths, not the host', async () => {
    const r = await sshExec(t.node, 'cat /etc/os-release; ls /usr/local/bin; test -d /var/lib/rancher/k3s/server/tls && echo tls; pwd; touch /run/reboot-required && ls /var/run/reboot-required')
    expect(r.stdout).toContain('PRETTY_NAME="Ubuntu 22.04.4 LTS"')
    expect(r.stdout).toContain('k3s\nk3s-killall.sh\nk3s-uninstall.sh\n')
    expect(r.stdout).toContain('tls\n/root\n/var/run/reboot-required\n')
    // The file landed in the node's own /run, not the host's.
    expect(readFileSync(join(t.node.paths.root, 'run/reboot-required'), 'utf8')).toBe('')
    expect((await run('sh', ['-c', 'test -e /run/reboot-required && echo host || echo clean'])).stdout).toBe('clean\n')
  })

  it('delivers signals to the command and reports them as the exit status', async () => {
    const res = await new Promise<{ signal?: string; code?: number | null }>((resolve, reject) => {
      const c = new ssh2.Client()
      c.on('ready', () =>
        c.exec('echo started; sleep 30', (err, stream) => {
          if (err) return reject(err)
          const out: { signal?: string; code?: number | null } = {}
          stream.on('data', () => stream.signal('TERM'))
          stream.on('exit', (code: number | null, signal?: string) => Object.assign(out, { code, signal }))
          stream.on('close', () => {
            c.end()
            resolve(out)
          })
        }),
      )
      c.on('error', reject)
      c.connect({ host: t.node.options.address, port: 2222, username: 'root', privateKey: clientKey.private })
    })
    // The wire carries "TERM"; ssh2's client reports it with the SIG prefix.
    expect(res.signal).toBe('SIGTERM')
  })

  it.runIf(existsSync('/usr/lib/openssh/sftp-server'))('serves sftp through the real sftp-server inside the node', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const c = new ssh2.Client()
      c.on('ready', () =>
        c.sftp((err, sftp) => {
          if (err) return reject(err)
          sftp.writeFile('/etc/kubernetes/uploaded.yaml', 'kind: Test\n', (e1) => {
            if (e1) return reject(e1)
            sftp.readdir('/etc/kubernetes', (e2, list) => {
              c.end()
              if (e2) return reject(e2)
              resolve(list.map((f) => f.filename).sort().join(','))
            })
          })
        }),
      )
      c.on('error', reject)
      c.connect({ host: t.node.options.address, port: 2222, username: 'root', privateKey: clientKey.private })
    })
    expect(got.split(',')).toContain('uploaded.yaml')
    expect(readFileSync(join(t.node.paths.root, 'etc/kubernetes/uploaded.yaml'), 'utf8')).toBe('kind: Test\n')
  })

  it('refuses a key that is not authorized, and unknown users', async () => {
    const other = generateEd25519KeyPair()
    await expect(sshExec(t.node, 'true', { privateKey: other.private })).rejects.toThrow(/authentication methods failed/)
    await expect(sshExec(t.node, 'true', { user: 'mallory' })).rejects.toThrow(/authentication methods failed/)
  })

  it('gives non-root logins sudo as configured', async () => {
    const ops = await sshExec(t.node, 'id -u; sudo -n id -u; systemctl stop k3s; echo rc=$?', { user: 'ops' })
    expect(ops.stdout).toBe('1000\n0\nrc=1\n')
    expect(ops.stderr).toContain('Failed to stop k3s.service: Interactive authentication required.')
    const guest = await sshExec(t.node, 'sudo -n systemctl restart k3s', { user: 'guest' })
    expect(guest).toMatchObject({ code: 1, stderr: 'sudo: a password is required\n' })
  })

  it('works with a node root under a path every node mounts over (a lab dir in $HOME)', async () => {
    const home = mkdtempSync(join(homedir(), '.kupgrade-labnode-test-'))
    try {
      const n = new LabNode({ ...t.node.options, address: freshAddress(), rootDir: join(home, 'root'), hostKey: undefined })
      await n.start()
      try {
        const r = await sshExec(n, 'k3s --version | head -n1; ls /root | head -n1; echo $LAB_DIR')
        expect(r.stdout).toBe('k3s version v1.29.2+k3s1 (e7cfc235)\n/mnt/lab\n')
      } finally {
        await n.stop()
      }
    } finally {
      rmSync(home, { recursive: true, force: true })
    }
  })

  it('keeps its host key across restarts of the same node root', async () => {
    const before = t.node.hostKeyPublic
    expect(before).toMatch(/^ssh-ed25519 AAAA[0-9A-Za-z+/=]+$/)
    await t.node.stop()
    const again = new LabNode(t.node.options)
    await again.start()
    try {
      expect(again.hostKeyPublic).toBe(before)
      expect((await sshExec(again, 'k3s --version')).stdout).toContain('k3s version v1.29.2+k3s1')
    } finally {
      await again.stop()
      await t.node.start() // so afterAll's cleanup has a node to stop
    }
  })

  it('a restart puts the node network shim back by a rename, so a program still mapping the old file keeps it whole', async () => {
    const shim = join(t.node.paths.lab, 'vip-connect.so')
    const built = readFileSync(shim)
    expect((await sshExec(t.node, 'cat /etc/ld.so.preload')).stdout).toBe('/mnt/lab/vip-connect.so\n')
    // An older build the node still holds open, as a program started before the restart maps it.
    writeFileSync(shim, 'an older build')
    const held = openSync(shim, 'r')
    // Every program on the node loads it: the dynamic loader says so about a file that is no shared object.
    expect((await sshExec(t.node, 'echo ok')).stderr).toMatch(/ld\.so: object '\/mnt\/lab\/vip-connect\.so' from \/etc\/ld\.so\.preload cannot be preloaded/)
    await t.node.stop()
    const again = new LabNode(t.node.options)
    await again.start()
    try {
      expect(readFileSync(shim).equals(built)).toBe(true)
      const old = Buffer.alloc(64)
      expect(old.toString('utf8', 0, readSync(held, old, 0, 64, 0))).toBe('an older build')
      expect(await sshExec(again, 'echo ok')).toEqual({ stdout: 'ok\n', stderr: '', code: 0 })
    } finally {
      closeSync(held)
      await again.stop()
      await t.node.start() // so afterAll's cleanup has a node to stop
    }
  })

  /** The real OpenSSH client's options for node t with the test's key and strict host key checking (files named by `tag`). */
  const opensshArgs = (tag = ''): string[] => {
    const keyFile = join(t.dir, `id_ed25519${tag && `_${tag}`}`)
    writeFileSync(keyFile, clientKey.private)
    chmodSync(keyFile, 0o600)
    const known = join(t.dir, `known_hosts${tag && `_${tag}`}`)
    writeFileSync(known, `[${t.node.options.address}]:2222 ${t.node.hostKeyPublic}\n`)
    return ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`, '-i', keyFile, '-p', '2222']
  }

  it('a restart whose OpenSSH client dies while its job waits still runs whole, as systemd runs the job and not the client', async () => {
    // Another job of the unit holds systemd's queue (its lock) while the client's restart waits behind it.
    const lock = join(t.node.paths.lab, 'units/.k3s.job')
    writeFileSync(lock, '')
    const holder = spawn('flock', ['-o', lock, 'sleep', '30'], { stdio: 'ignore' })
    try {
      const ev = recordEvents(t.node)
      const client = spawn('ssh', [...opensshArgs('restart'), `root@${t.node.options.address}`, 'systemctl restart k3s'], { stdio: 'ignore' })
      const exited = new Promise((r) => client.on('exit', r))
      // The restart waits on the queue: a process of the node other than the holder has the lock file open.
      const ino = statSync(lock).ino
      const waiting = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== holder.pid).some((p) => {
        try {
          return readdirSync(`/proc/${p}/fd`).some((fd) => { try { return statSync(`/proc/${p}/fd/${fd}`).ino === ino } catch { return false } })
        } catch {
          return false
        }
      })
      for (const deadline = Date.now() + 20_000; !waiting(); await new Promise((r) => setTimeout(r, 50))) if (Date.now() > deadline) throw new Error('the restart never queued')
      client.kill('SIGKILL')
      await exited
      holder.kill('SIGKILL')
      expect(await ev.next('service')).toMatchObject({ service: 'k3s', state: 'stopped' })
      expect(await ev.next('service')).toMatchObject({ service: 'k3s', state: 'started' })
    } finally {
      holder.kill('SIGKILL')
    }
  })

  it('a login other than root may not run a program from a folder only root may enter, as the kernel refuses it', async () => {
    const ssh = (user: string, cmd: string) => run('ssh', [...opensshArgs('perm'), '-o', 'ConnectTimeout=10', `${user}@${t.node.options.address}`, cmd], { timeout: 30_000 })
      .then((r) => ({ ...r, code: 0 }), (e: { code: number; stdout: string; stderr: string }) => e)
    // A kept copy, as kupgrade keeps one: a root-only folder (umask 077) under /var/lib.
    expect((await ssh('root', 'umask 077 && mkdir -p /var/lib/kept/usr/local/bin && cp -a /usr/local/bin/k3s /var/lib/kept/usr/local/bin/ && echo kept')).stdout).toBe('kept\n')
    const refused = await ssh('ops', '/var/lib/kept/usr/local/bin/k3s --version')
    expect(refused).toMatchObject({ code: 126, stdout: '', stderr: 'bash: line 1: /var/lib/kept/usr/local/bin/k3s: Permission denied\n' })
    expect((await ssh('ops', 'sudo -n /var/lib/kept/usr/local/bin/k3s --version')).stdout).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
    expect((await ssh('root', '/var/lib/kept/usr/local/bin/k3s --version')).stdout).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
    expect((await ssh('ops', '/usr/local/bin/k3s --version')).stdout).toMatch(/^k3s version v1\.29\.2\+k3s1 /)
    // The real thing on this machine says the same: bash run as nobody against a root-only folder.
    const dir = mkdtempSync(join(t.dir, 'kept-'))
    writeFileSync(join(dir, 'k3s'), '#!/bin/sh\necho ran\n', { mode: 0o755 })
    chmodSync(dir, 0o700)
    // (Only PATH: bash run with SSH_CLIENT in its environment reads ~/.bashrc first, as if sshd ran it, and HOME is root's.)
    const real = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', '-c', `${dir}/k3s --version`], { timeout: 30_000, argv0: 'bash', env: { PATH: process.env.PATH } } as object)
      .then(() => undefined, (e: { code: number; stderr: string }) => e)
    expect(real).toMatchObject({ code: 126, stderr: `bash: line 1: ${dir}/k3s: Permission denied\n` })
  })

  it('works with the real OpenSSH client and strict host key checking', async () => {
    const keyFile = join(t.dir, 'id_ed25519')
    const known = join(t.dir, 'known_hosts')
    const args = opensshArgs()
    const ssh = (extra: string[], cmd: string) => run('ssh', [...args, '-o', 'ConnectTimeout=10', ...extra, `root@${t.node.options.address}`, cmd], { timeout: 30_000 })
    const ok = await ssh([], 'k3s --version; systemctl is-active k3s')
    expect(ok.stdout).toBe('k3s version v1.29.2+k3s1 (e7cfc235)\ngo version go1.22.5\nactive\n')
    const failing = await ssh([], 'exit 3').catch((e: { code: number }) => e)
    expect(failing).toMatchObject({ code: 3 })
    if (existsSync('/usr/lib/openssh/sftp-server')) {
      // OpenSSH 9's scp speaks sftp: the file lands in the node's own /root.
      const local = join(t.dir, 'upload.txt')
      writeFileSync(local, 'via scp\n')
      await run('scp', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`, '-i', keyFile, '-P', '2222',
        local, `root@${t.node.options.address}:/root/upload.txt`], { timeout: 30_000 })
      expect(readFileSync(join(t.node.paths.root, 'root/upload.txt'), 'utf8')).toBe('via scp\n')
    }
    // An unauthorized client key is refused: OpenSSH reports it as sshd would.
    const otherKey = join(t.dir, 'id_other')
    writeFileSync(otherKey, generateEd25519KeyPair().private)
    chmodSync(otherKey, 0o600)
    const denied = await run('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${known}`, '-o', 'IdentitiesOnly=yes',
      '-i', otherKey, '-p', '2222', `root@${t.node.options.address}`, 'true'], { timeout: 30_000 }).catch((e: { code: number; stderr: string }) => e)
    expect(denied).toMatchObject({ code: 255 })
    expect((denied as { stderr: string }).stderr).toContain('Permission denied (publickey)')
    // A known_hosts entry for another key must make OpenSSH refuse the host.
    writeFileSync(known, `[${t.node.options.address}]:2222 ${generateEd25519KeyPair().public.split(' ').slice(0, 2).join(' ')}\n`)
    const refused = await ssh([], 'true').catch((e: { code: number; stderr: string }) => e)
    expect(refused).toMatchObject({ code: 255 })
    expect((refused as { stderr: string }).stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
  })
})
