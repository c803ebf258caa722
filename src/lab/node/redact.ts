/**
 * Commands reach the lab's logs through the `exec` event; installer tokens (`K3S_TOKEN=…`, `--token …`) and passwords
 * must not (brief §8: no secret is ever printed).
 */
const PATTERNS: [RegExp, string][] = [
  [/\b([A-Z0-9_]*(?:TOKEN|PASSWORD|SECRET)[A-Z0-9_]*=)('[^']*'|"[^"]*"|\S+)/g, '$1***'],
  [/(--(?:token|password|certificate-key|discovery-token-ca-cert-hash)[= ])('[^']*'|"[^"]*"|\S+)/g, '$1***'],
]

export function redact(command: string): string {
  return PATTERNS.reduce((text, [re, to]) => text.replace(re, to), command)
}
