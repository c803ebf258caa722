import ssh2 from 'ssh2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isAcceptedEnv } from '../../../src/lab/node/ssh-server.js'
import { clientKey, startNode, type TestNode } from './helpers.js'

/**
 * The lab's sshd hands a session's environment to the node's root bash. sshd (Debian's sshd_config: AcceptEnv LANG
 * LC_*) refuses every other variable a client sends; the lab must not be more forgiving, or `ssh -o SetEnv=LD_PRELOAD=…`
 * reaches the loader of a root shell.
 */
function execWithEnv(address: string, command: string, env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client()
    c.on('ready', () =>
      c.exec(command, { env }, (err, stream) => {
        if (err) return reject(err)
        let out = ''
        stream.on('data', (d: Buffer) => (out += d.toString()))
        stream.stderr.on('data', () => undefined)
        stream.on('close', () => {
          c.end()
          resolve(out)
        })
      }),
    )
    c.on('error', reject)
    c.connect({ host: address, port: 2222, username: 'root', privateKey: clientKey.private })
  })
}

describe('lab node sshd: client environment', () => {
  let t: TestNode
  beforeAll(async () => {
    t = await startNode({ address: '127.0.50.1' })
  })
  afterAll(async () => t?.cleanup())

  it('passes LANG and LC_* and nothing else, as sshd with AcceptEnv LANG LC_* does', async () => {
    const out = await execWithEnv(t.node.options.address, 'echo "[$LANG][$LC_ALL][$LC_TIME][${LD_PRELOAD-unset}][${BASH_ENV-unset}][${KUPGRADE_EVIL-unset}]"', {
      LANG: 'C.UTF-8', LC_ALL: 'C', LC_TIME: 'en_GB.UTF-8', LD_PRELOAD: '/tmp/evil.so', BASH_ENV: '/tmp/evil.sh', KUPGRADE_EVIL: '1',
    })
    expect(out).toBe('[C.UTF-8][C][en_GB.UTF-8][unset][unset][unset]\n')
  })

  it('matches names as OpenSSH does: the whole name, LANG exactly or LC_ and anything', () => {
    expect(['LANG', 'LC_ALL', 'LC_', 'LC_MESSAGES'].every(isAcceptedEnv)).toBe(true)
    expect(['LANGUAGE', 'LD_PRELOAD', 'PATH', 'lang', 'XLC_ALL', 'LC-ALL', 'BASH_ENV'].some(isAcceptedEnv)).toBe(false)
  })
})
