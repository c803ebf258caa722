/**
 * Which kubectl failures are worth retrying. kubectl exits 1 for everything, so the decision is read from stderr:
 * timeouts, throttling (429) and server errors (5xx) are transient; 4xx (forbidden, not found, unauthorized, bad
 * request, conflict) will fail the same way again and are reported at once.
 */
export type FailureKind = 'tls' | 'config' | 'unreachable' | 'timeout' | 'throttled' | 'server' | 'client' | 'unknown'

/**
 * A context the kubeconfig lacks, in kubectl's two wordings: "context was not found for specified context: X" (get)
 * and `error: context "X" does not exist` (get --raw, the version read).
 */
export const NO_SUCH_CONTEXT = /context was not found|context "[^"\n]*" does not exist/

const PATTERNS: [FailureKind, RegExp][] = [
  // Checked before timeouts: kubectl words a certificate it does not trust "Unable to connect to the server: tls:
  // failed to verify certificate: x509: …", which is a trust problem that no retry fixes, not a slow server.
  ['tls', /x509:|certificate signed by unknown authority|failed to verify certificate|certificate is not valid for|certificate has expired|tls: failed to parse private key|tls: private key does not match|remote error: tls: bad certificate/i],
  // The kubeconfig itself is wrong: no request was ever sent.
  ['config', new RegExp(`${NO_SUCH_CONTEXT.source}|no context exists|Error in configuration|invalid configuration|cannot unmarshal|error loading config file|couldn't get version/kind; json parse error`, 'i')],
  // Checked first: a 4xx answer can mention a timeout field in its body, but it is still a definite answer.
  ['client', /\((Forbidden|NotFound|Unauthorized|BadRequest|Conflict|Invalid|MethodNotAllowed|NotAcceptable|UnsupportedMediaType|AlreadyExists|Gone)\)|the server has asked for the client to provide credentials|doesn't have a resource type|is forbidden|not found|could not find the requested resource|error: unknown (command|flag)/i],
  ['throttled', /\(TooManyRequests\)|too many requests|\b429\b|rate: Wait|client rate limiter/i],
  ['server', /\(InternalError\)|\(ServiceUnavailable\)|\(InternalServerError\)|\(BadGateway\)|the server is currently unable to handle the request|an error on the server .* has prevented the request|Internal error occurred|\b50[0-4]\b|etcdserver: (request timed out|leader changed)/i],
  // Nothing listens (an apiserver restarting) or no path to it. kubectl words a refused connection its own way when it
  // needed no discovery first (`get --raw`, `version`, or with its discovery cache warm): "The connection to the
  // server HOST:PORT was refused - did you specify the right host or port?" (kubectl cmd/util StandardErrorMessage).
  // Checked before timeouts: the discovery lines before it name a URL with `?timeout=20s` in it.
  ['unreachable', /connection refused|The connection to the server \S+ was refused|no route to host|no such host|network is unreachable/i],
  ['timeout', /timeout|timed out|deadline exceeded|Client\.Timeout|i\/o timeout|TLS handshake|connection reset|EOF$|unexpected EOF|Unable to connect to the server|net\/http: request canceled/im],
]

export function classifyKubectlFailure(stderr: string): FailureKind {
  for (const [kind, re] of PATTERNS) if (re.test(stderr)) return kind
  return 'unknown'
}

export const isRetryable = (k: FailureKind): boolean => k === 'unreachable' || k === 'timeout' || k === 'throttled' || k === 'server'

/**
 * The API server gave no answer of its own: kubectl could not reach it, or what stood in front of it (a load balancer,
 * an apiserver restarting, etcd changing leader) could not serve. Narrower than 'timeout': a drain's "global timeout
 * reached" or a wait's "timed out waiting for the condition" is kubectl's answer about the cluster, not a lost request.
 */
export function isTransportFailure(stderr: string): boolean {
  const kind = classifyKubectlFailure(stderr)
  // Nothing listening or no path to it is a lost request by definition; the other retryable kinds need their words.
  // A certificate kubectl does not trust is also "Unable to connect to the server": classified 'tls', never transient.
  return kind === 'unreachable' || (isRetryable(kind) && /Unable to connect to the server|TLS handshake timeout|connection reset by peer|broken pipe|i\/o timeout|net\/http: request canceled|Client\.Timeout exceeded|context deadline exceeded|unexpected EOF|http2: (server sent GOAWAY|client connection lost)|the server is currently unable to handle the request|\((ServiceUnavailable|InternalError|TooManyRequests)\)|etcdserver: (request timed out|leader changed)/i.test(stderr))
}

/** Whether a kubectl failure is the API server's answer with this Status reason: `Error from server (AlreadyExists)`. */
export const hasStatusReason = (err: unknown, reason: string): boolean => err instanceof Error && err.message.includes(`(${reason})`)
