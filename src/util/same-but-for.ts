/** How many names a grouped line lists before it counts the rest. */
const NAMES_SHOWN = 5

/** Messages that read the same but for what is each one's own: said once, at the first, with the others named after it. */
export interface SameGroup {
  first: string
  /** Where the first is in the list given. */
  index: number
  text: string
  others: string[]
}

/**
 * Groups messages that are the same but for their own names and addresses (a node's name and host, a cluster's
 * name), first seen first. One cause met by many — no ssh-agent for a hundred nodes, a kubeconfig without any of the
 * fleet's contexts — is then one line to read, not a hundred that differ only where each names itself.
 */
export function sameButFor(items: { name: string; text: string; own: string[] }[]): SameGroup[] {
  const groups = new Map<string, { group: SameGroup; names: Set<string> }>()
  items.forEach(({ name, text, own }, index) => {
    const shape = own.filter(Boolean).reduce((t, o) => t.replaceAll(o, '\0'), text)
    const g = groups.get(shape)
    if (!g) groups.set(shape, { group: { first: name, index, text, others: [] }, names: new Set([name]) })
    // The same name again with the same message is the same observation twice: said once.
    else if (!g.names.has(name)) {
      g.names.add(name)
      g.group.others.push(name)
    }
  })
  return [...groups.values()].map((g) => g.group)
}

/** ` (the same for 2 more nodes of prod: w-2, w-3)`, or nothing for a group of one. */
export function sameFor(others: string[], noun: string, of?: string): string {
  if (others.length === 0) return ''
  const names = others.length > NAMES_SHOWN ? `${others.slice(0, NAMES_SHOWN).join(', ')} and ${others.length - NAMES_SHOWN} more` : others.join(', ')
  return ` (the same for ${others.length} more ${noun}${others.length === 1 ? '' : 's'}${of ? ` of ${of}` : ''}: ${names})`
}
