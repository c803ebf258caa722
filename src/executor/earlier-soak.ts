import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { readJournal, type JournalHeader } from './journal.js'
import { runsDir } from './runs.js'

/**
 * The newest soak of this step that another run of the same plan (same sha256) finished, from the journals beside the
 * plan. Only a soak that ran to its end counts: one skipped, cut short or failed does not.
 */
export function earlierSoak(planDir: string, header: JournalHeader, stepId: string): { runId: string; at: string } | undefined {
  const dir = runsDir(planDir)
  if (!existsSync(dir)) return undefined
  const needle = `"step":${JSON.stringify(stepId)}`
  let best: { runId: string; at: string } | undefined
  for (const id of readdirSync(dir)) {
    const path = join(dir, id, 'journal.jsonl')
    if (id === header.runId || !existsSync(path)) continue
    // A 2,000-node run's journal is megabytes: parsed only when it names the soak at all.
    if (!readFileSync(path, 'utf8').includes(needle)) continue
    let journal
    try {
      journal = readJournal(path)
    } catch {
      continue // a journal that cannot be read vouches for nothing
    }
    if (journal.header.planSha256 !== header.planSha256) continue
    const done = journal.entries.filter((e) => e.step === stepId && e.state === 'done').at(-1)
    if (done && (!best || done.time > best.at)) best = { runId: journal.header.runId, at: done.time }
  }
  return best
}
