/**
 * Asks for a key passphrase on the terminal without echoing it. Only used when stdin is a TTY and
 * KUPGRADE_SSH_PASSPHRASE is unset; in CI the caller fails with a message instead of hanging on a prompt.
 */
export function promptHidden(question: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WritableStream = process.stderr): Promise<string> {
  return new Promise((resolve, reject) => {
    output.write(question)
    const wasRaw = input.isRaw
    input.setRawMode?.(true)
    input.resume()
    let answer = ''
    const done = (err?: Error) => {
      input.off('data', onData)
      input.setRawMode?.(wasRaw ?? false)
      input.pause()
      output.write('\n')
      if (err) reject(err)
      else resolve(answer)
    }
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done()
        if (ch === '\u0003') return done(new Error('passphrase prompt interrupted'))
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1)
        else answer += ch
      }
    }
    input.on('data', onData)
  })
}
