/**
 * One curl process for several URLs of a node read. Each curl start costs a node a few tens of milliseconds of CPU
 * (its libraries, OpenSSL's start) and a gate reads every node at every check, so a gate that needs two URLs asks
 * for both in one curl. With `--stderr -` curl writes its error message into the same stream as the transfer, just
 * before the transfer's write-out, so each transfer's output stays in order and apart (curl ≥ 6.2; a multi-URL
 * command line is older). The write-out comes for failed transfers too, with HTTP code 000.
 */
const CURL_WRITE_OUT = '\\ncode=%{http_code}\\n'

/** The command's curl options that make its output readable by `curlTransfers`: silent but for errors, in order. */
export const CURL_ORDERED = `-sS --stderr - -w '${CURL_WRITE_OUT}'`

export interface CurlTransfer {
  /** What the server sent (empty with `-o /dev/null`); on an error, what arrived before it. */
  body: string
  /** The HTTP code; `000` when there was no HTTP answer. */
  code: string
  /** curl's exit code for this transfer and its message (`curl: (7) Failed to connect …`), when it failed. */
  exit?: number
  error?: string
}

/** The transfers of one curl run with `CURL_ORDERED`, in the order of its URLs. Whatever follows the last write-out
 *  (a shell's `curl: not found`) is no transfer. */
export function curlTransfers(text: string): CurlTransfer[] {
  const out: CurlTransfer[] = []
  let from = 0
  for (const m of text.matchAll(/(?:^|\n)code=(\d{3})(?=\n|$)/g)) {
    // (The previous write-out's final newline.)
    const chunk = text.slice(from, m.index).replace(/^\n/, '')
    from = m.index + m[0].length
    // A message that follows a body without a final newline stays on the body's last line.
    const e = /curl: \((\d+)\) [^\n]*\s*$/.exec(chunk)
    out.push({ body: e ? chunk.slice(0, e.index) : chunk, code: m[1]!, ...(e ? { exit: Number(e[1]), error: e[0].trim() } : {}) })
  }
  return out
}
