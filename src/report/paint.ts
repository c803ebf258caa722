/** An SGR colour or style around `s` when colour is on (a terminal, no NO_COLOR, no --no-color); `s` alone otherwise. */
export const paint = (on: boolean, code: number, s: string): string => (on ? `\u001b[${code}m${s}\u001b[0m` : s)
