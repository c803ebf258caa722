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
  [/(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}/g, '$1[REDACTED]'],
  // kubeconfig YAML/JSON fields
  [/((?:client-key-data|client-certificate-data|certificate-authority-data|token|id-token|refresh-token|access-token|password|secret)"?\s*[:=]\s*"?)([^\s",}]+)/gi, '$1[REDACTED]'],
  // PEM private keys pasted whole
  [/-----BEGIN ([A-Z ]*PRIVATE KEY)-----[\s\S]*?-----END \1-----/g, '-----BEGIN $1-----[REDACTED]-----END $1-----'],
]

export function redact(text: string): string {
  let out = text
  for (const [re, repl] of RULES) out = out.replace(re, repl)
  return out
}

/** An argv for display: joined, then redacted (so `--token` followed by a separate value is caught too). */
export const redactArgv = (argv: readonly string[]): string => redact(argv.map((a) => (/\s/.test(a) || a === '' ? JSON.stringify(a) : a)).join(' '))
