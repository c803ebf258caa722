/**
 * A failed gate's evidence as people read it: what did not hold, and a count of the observations that did (a
 * system-pods failure of one CoreDNS pod beside twenty Ready ones is one line and a count, not twenty-one lines).
 * `held`: how many of the last items held (the gate-result event's `held`); `--output json` and the journal keep
 * them all.
 */
export function withHeldFolded(evidence: readonly string[], held: number | undefined): string[] {
  if (!held || held >= evidence.length) return [...evidence]
  return [...evidence.slice(0, evidence.length - held), `… and ${held} observation${held === 1 ? '' : 's'} that held (listed in --output json and the run's journal)`]
}
