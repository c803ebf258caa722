/** A step that failed, with what was observed (journaled as `evidence`, shown in the report). */
export class StepFailure extends Error {
  constructor(message: string, readonly evidence: string[]) {
    super(message)
    this.name = 'StepFailure'
  }
}
