import { describe, expect, it } from 'vitest'
import { redact } from '../../../src/lab/node/redact.js'

describe('exec event redaction', () => {
  it('hides installer tokens and passwords, keeps the rest of the command', () => {
    expect(redact("curl -sfL https://get.k3s.io | K3S_URL=https://10.0.0.10:6443 K3S_TOKEN='K10abc::server:xyz' sh -s - agent"))
      .toBe("curl -sfL https://get.k3s.io | K3S_URL=https://10.0.0.10:6443 K3S_TOKEN=*** sh -s - agent")
    expect(redact('kubeadm join 10.0.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:00ff'))
      .toBe('kubeadm join 10.0.0.10:6443 --token *** --discovery-token-ca-cert-hash ***')
    expect(redact('DB_PASSWORD="p w" run --password=hunter2')).toBe('DB_PASSWORD=*** run --password=***')
    expect(redact('systemctl restart k3s')).toBe('systemctl restart k3s')
  })
})
