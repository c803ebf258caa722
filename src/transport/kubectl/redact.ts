/**
 * Secrets that can show up in a kubectl command line or in its output (verbose logs echo headers, errors echo
 * kubeconfig snippets). Everything kubectl-related passes through `redact` before it reaches an error, a log or a
 * journal: a token or a key in a CI log is a leaked credential.
 */
const RULES: [RegExp, string][] = [
  // --token=X, --token X, --password=X, --client-key-data ... (flags that carry the secret itself)
  [/(--(?:token|password|client-key-data|client-certificate-data|auth-provider-arg)(?:=|\s+))(\S+)/gi, '$1[REDACTED]'],
  // Authorization headers in -v=8 output or error bodies
  [/(\bAuthorization:\s*)(Bearer|Basic)\s+\S+/gi, '$1$2 [REDACTED]'],
  // any case: `bearer`, `BEARER` (Go's http client and proxies echo the header however it was written)
  [/(\bBearer\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}/gi, '$1[REDACTED]'],
  // kubeconfig YAML/JSON fields
  [/((?:client-key-data|client-certificate-data|certificate-authority-data|token|id-token|refresh-token|access-token|password|secret)"?\s*[:=]\s*"?)([^\s",}]+)/gi, '$1[REDACTED]'],
  // PEM private keys pasted whole
  [/-----BEGIN ([A-Z ]*PRIVATE KEY)-----[\s\S]*?-----END \1-----/g, '-----BEGIN $1-----[REDACTED]-----END $1-----'],
  // base64 of a PEM block ("LS0tLS1CRUdJTi…" is "-----BEGIN"), as kubectl echoes key data it cannot parse:
  // `tls: failed to parse private key LS0t…`
  [/LS0tLS1[A-Za-z0-9+/=]{8,}/g, '[REDACTED]'],
  // any other long base64 run (a DER key, a token); hashes in hex (64 characters) stay readable
  [/(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{80,}={0,2}(?![A-Za-z0-9+/=])/g, '[REDACTED]'],
]

export function redact(text: string): string {
  let out = text
  for (const [re, repl] of RULES) out = out.replace(re, repl)
  return out
}

/** An argv for display: joined, then redacted (so `--token` followed by a separate value is caught too). */
export const redactArgv = (argv: readonly string[]): string => redact(argv.map((a) => (/\s/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' '))
