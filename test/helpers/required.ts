import { describe, it } from 'vitest'

/**
 * Whether a suite that needs `what` (a binary, kernel namespaces, a real kubectl …) can run here. On a developer
 * machine without it the suite is skipped; under KUPGRADE_REQUIRE_INTEROP=1 (what .ci/run sets) a missing
 * requirement is a failing test that says how to install it, never a silent skip.
 */
export function available(ok: boolean, what: string, install: string): boolean {
  if (!ok && process.env.KUPGRADE_REQUIRE_INTEROP === '1') {
    describe(`requirement: ${what}`, () => {
      it('is available (KUPGRADE_REQUIRE_INTEROP=1 forbids skipping)', () => {
        throw new Error(`${what} is missing here: ${install}`)
      })
    })
  }
  return ok
}
