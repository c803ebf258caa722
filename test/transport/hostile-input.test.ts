import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { afterAll, describe, expect, it } from 'vitest'
import { RemoteCommandError } from '../../src/errors.js'
import { binaryText } from '../../src/lab/node/layout.js'
import { classifyKubectlFailure } from '../../src/transport/kubectl/classify.js'
import { KubectlClient } from '../../src/transport/kubectl/client.js'
import { redact } from '../../src/transport/kubectl/redact.js'
import { checkHostKey, HostKeyError } from '../../src/transport/ssh/host-key.js'
import { IdentityStore, SshAuthError } from '../../src/transport/ssh/identity.js'

/** Issue 8 at the transport edge: what kubectl prints is redacted and classified truthfully; files are bounded. */
const FAKE = join(import.meta.dirname, 'fixtures', 'fake-kubectl.sh')
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-hostile-transport-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const fifo = (name: string) => {
  const p = join(dir, name)
  execFileSync('mkfifo', [p])
  return p
}

function client(fails: string[], kubeconfig = '/tmp/kc') {
  const state = mkdtempSync(join(dir, 'state-'))
  writeFileSync(join(state, 'out.json'), '{}')
  const c = new KubectlClient({
    cluster: 'staging', binary: FAKE, kubeconfig, context: 'ctx-a', cacheDir: join(state, 'cache'), backoffBaseMs: 1, backoffCapMs: 5,
    env: { ...process.env, FAKE_STATE: state, FAKE_FAILS: fails.join(','), FAKE_OUT: join(state, 'out.json') },
  })
  return { c, calls: () => Number(readFileSync(join(state, 'count'), 'utf8')) }
}
/** A fresh ed25519 public key blob, as a server presents it. */
const hostKeyBlob = (): Buffer => Buffer.from(ssh2.utils.generateKeyPairSync('ed25519').public.split(' ')[1]!, 'base64')

const rejection = (p: Promise<unknown>) => p.then(() => { throw new Error('expected rejection') }, (e: unknown) => e as RemoteCommandError)

describe('kubectl stderr is redacted in every form', () => {
  it.each([
    ['bearer', 'authorization: bearer sekrit-token-0123456789'],
    ['BEARER', 'AUTHORIZATION: BEARER sekrit-token-0123456789'],
    ['Bearer without a header name', 'token was Bearer sekrit-token-0123456789 here'],
  ])('%s', (_what, line) => {
    expect(redact(line)).not.toContain('sekrit')
    expect(redact(line)).toContain('[REDACTED]')
  })
  it('base64 of a PEM key, as kubectl echoes key data it cannot parse', () => {
    const out = redact('error: tls: failed to parse private key LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUNvYnNlY3JldA==')
    expect(out).toBe('error: tls: failed to parse private key [REDACTED]')
  })
  it('a long base64 blob, but not a hex digest', () => {
    const blob = Buffer.from('x'.repeat(90)).toString('base64')
    expect(redact(`key ${blob} end`)).toBe('key [REDACTED] end')
    const sha = 'a'.repeat(64)
    expect(redact(`sha256:${sha}`)).toBe(`sha256:${sha}`)
  })
  it('end to end: nothing of the key or the tokens reaches the error', async () => {
    const err = await rejection(client(['keyleak']).c.version())
    const all = `${err.message}\n${err.hint}`
    expect(all).not.toMatch(/sekrit|LS0tLS1CRUdJTiBFQyBQUklWQVRF/)
  })
})

describe('kubectl failures are named for what they are', () => {
  it('x509 "unknown authority" is a TLS trust problem, reported at once, not retried as a timeout', async () => {
    expect(classifyKubectlFailure('Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority')).toBe('tls')
    const { c, calls } = client(['x509', 'x509', 'x509', 'x509'])
    const err = await rejection(c.version())
    expect(calls()).toBe(1)
    expect(err.hint).toMatch(/^TLS trust problem: the API server's certificate is not trusted with the kubeconfig \/tmp\/kc/)
    expect(err.hint).not.toMatch(/did not answer in time|attempts/)
  })
  it('a missing context says which context and where to look, not "(unknown)" or "refused"', async () => {
    const err = await rejection(client(['nocontext']).c.version())
    expect(err.hint).toBe('the kubeconfig cannot be used as given: is there a context named ctx-a in /tmp/kc? (kubectl config get-contexts)')
  })
  it('a FIFO kubeconfig is refused by path before kubectl could block on it', async () => {
    const kc = fifo('kubeconfig')
    const { c } = client([], kc)
    const err = await rejection(c.version())
    expect(err.hint).toBe(`cannot use kubeconfig ${kc} (a FIFO, not a regular file): point kubeconfig (or KUBECONFIG) at a kubeconfig file`)
  })
})

describe('identity and known_hosts files are read bounded, regular files only', () => {
  it('identityFile: /dev/zero is refused, not read until memory runs out', async () => {
    const store = new IdentityStore({ env: {} })
    await expect(store.load('/dev/zero')).rejects.toThrow(SshAuthError)
    await expect(store.load('/dev/zero')).rejects.toThrow('cannot read identity file /dev/zero: a character device, not a regular file')
  })
  it('an identity file FIFO is refused at once', async () => {
    const f = fifo('id_fifo')
    await expect(new IdentityStore({ env: {} }).load(f)).rejects.toThrow(`cannot read identity file ${f}: a FIFO, not a regular file`)
  })
  it('a known_hosts FIFO is refused at once', () => {
    const f = fifo('known_hosts')
    const key = hostKeyBlob()
    expect(() => checkHostKey({ knownHosts: f, acceptNew: true }, 'n1', '10.0.0.1', 22, key)).toThrow(HostKeyError)
    expect(() => checkHostKey({ knownHosts: f, acceptNew: true }, 'n1', '10.0.0.1', 22, key)).toThrow(`cannot read known_hosts file ${f}: a FIFO, not a regular file`)
  })
})

describe('commands suggested or generated are quoted by transport/quote.ts', () => {
  it('the ssh-keygen -R hint quotes the known_hosts path, so pasting it cannot run anything else', () => {
    const file = join(dir, "known hosts; echo $(echo pwned)'")
    writeFileSync(file, `[10.0.0.1]:2222 ssh-ed25519 ${hostKeyBlob().toString('base64')}\n`)
    let hint = ''
    try {
      checkHostKey({ knownHosts: file, acceptNew: false }, 'n1', '10.0.0.1', 2222, hostKeyBlob())
    } catch (err) {
      hint = (err as HostKeyError).hint ?? ''
    }
    const cmd = /\((ssh-keygen .*)\) and verify/.exec(hint)?.[1]
    expect(cmd).toBeDefined()
    // What a shell makes of the pasted command: exactly the four arguments, nothing run.
    const argv = spawnSync('bash', ['-c', `printf '%s\\n' ${cmd!.slice('ssh-keygen '.length)}`], { encoding: 'utf8' }).stdout
    expect(argv).toBe(`-R\n[10.0.0.1]:2222\n-f\n${file}\n`)
  })

  it("the lab's stand-in binaries carry their release quoted, whatever it holds", () => {
    const text = binaryText('k3s', "v1.30.4'$(echo pwned)\necho x")
    const r = spawnSync('bash', ['-c', `${text.split('\n').slice(0, 5).join('\n')}\nprintf '%s' "$LAB_VERSION"`], { encoding: 'utf8' })
    expect(r.stdout).toBe("v1.30.4'$(echo pwned)\necho x")
  })
})
