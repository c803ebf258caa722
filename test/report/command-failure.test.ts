import { describe, expect, it } from 'vitest'
import { addToHeadline, commandInOneLine, RemoteCommandError } from '../../src/errors.js'
import { plainLine } from '../../src/report/run-plain.js'

/** The k3s install step's script, as the driver renders it (its failure on the demo fleet under upgrade-command-fails). */
const INSTALL = [
  'set -e',
  'unit=/etc/systemd/system/k3s-agent.service',
  'if [ ! -f "$unit" ]; then echo kupgrade: the unit is gone >&2; exit 1; fi',
  'if [ -f "$unit".env ]; then set -a; . "$unit".env; set +a; fi',
  'args=$(awk \'/^ExecStart=/{f=1} f{print; if ($0 !~ /\\\\$/) exit}\' "$unit" | tr \'\\n\' \' \')',
  'eval "set -- $args"',
  'curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 INSTALL_K3S_SKIP_START=true sh -s - "$@"',
].join('\n')

describe('a failed command, as the user reads it', () => {
  it('a script is named by its length and the last line that does something, not printed whole', () => {
    expect(commandInOneLine(INSTALL)).toBe('a 7-line script ending in: curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 INSTALL_K3S_SKIP_START=true sh -s - "$@"')
    expect(commandInOneLine('for p in / /var; do\n  df -P "$p"\ndone\n')).toBe('a 3-line script ending in: df -P "$p"')
    expect(commandInOneLine('systemctl restart k3s-agent')).toBe('systemctl restart k3s-agent')
    expect(commandInOneLine(`echo ${'x'.repeat(400)}`)).toMatch(/^echo x{295}…$/)
  })

  it("the error keeps the whole command, and its lines after the first are what the node said", () => {
    const err = new RemoteCommandError({ node: 'staging-agent-1', cluster: 'staging', host: '127.0.11.2:2222', command: INSTALL, exitCode: 1, stderr: '[ERROR]  Download failed\n' })
    expect(err.command).toBe(INSTALL)
    expect(err.message).toBe('command failed on staging/staging-agent-1 (127.0.11.2:2222) with exit code 1: a 7-line script ending in: curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 INSTALL_K3S_SKIP_START=true sh -s - "$@"\n    [ERROR]  Download failed')
    // The step's failure line in CI logs carries what the node said, not only the first line.
    const line = plainLine({
      type: 'step-failed', time: '2026-12-05T02:09:53.000Z', attempt: 1, durationMs: 900, error: err.message, evidence: [],
      step: { id: 'staging/staging/hop1/staging-agent-1/replace-binary', stage: 'staging', cluster: 'staging', node: 'staging-agent-1', action: 'replace-binary', title: 'install k3s v1.30.4+k3s1', mutates: true },
    })
    expect(line).toBe(`2026-12-05 02:09:53Z staging › staging › staging-agent-1: ✗ install k3s v1.30.4+k3s1: ${err.message}`)
    expect(line).toContain('\n    [ERROR]  Download failed')
  })

  it('what the run says about it (left cordoned, how to go on) joins the headline, before what the node said', () => {
    const err = new RemoteCommandError({ node: 'staging-agent-1', cluster: 'staging', host: '127.0.11.2:2222', command: INSTALL, exitCode: 1, stderr: '[ERROR]  Download failed\n' })
    const paused = addToHeadline(addToHeadline(err.message, ' (staging-agent-1 is left cordoned)'), '; to go on after fixing it: kupgrade resume r1')
    expect(paused.split('\n')).toEqual([
      expect.stringMatching(/^command failed on staging\/staging-agent-1 .* sh -s - "\$@" \(staging-agent-1 is left cordoned\); to go on after fixing it: kupgrade resume r1$/),
      '    [ERROR]  Download failed',
    ])
    expect(addToHeadline('timed out after 300s', '; nothing was changed')).toBe('timed out after 300s; nothing was changed')
  })
})
