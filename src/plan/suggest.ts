/** "did you mean …": the closest candidate within a small edit distance, or nothing. */
/** What other tools call our values: k3s servers/agents, k0s controllers, kubeadm's old "master". */
const SYNONYMS: Record<string, string> = { master: 'control-plane', server: 'control-plane', controller: 'control-plane', agent: 'worker', node: 'worker' }

export function closest(word: string, candidates: readonly string[]): string | undefined {
  const synonym = SYNONYMS[word.toLowerCase()]
  if (synonym !== undefined && candidates.includes(synonym)) return synonym
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  const allowed = Math.max(2, Math.floor(word.length / 3))
  if (bestDistance <= allowed) return best
  // A longer or shorter spelling of a field (soakTime → soak, hostname → host): a shared prefix of 4+ characters.
  const w = word.toLowerCase()
  return candidates.find((c) => Math.min(c.length, w.length) >= 4 && (w.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(w)))
}

export const didYouMean = (word: string, candidates: readonly string[]): string => {
  const c = closest(word, candidates)
  return c ? ` (did you mean "${c}"?)` : ''
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = tmp
    }
  }
  return row[b.length]!
}
