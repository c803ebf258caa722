import { z } from 'zod'
import { GATES } from '../gates/catalog.js'
import { API_VERSION, planSchema } from './schema.js'

/**
 * The plan's JSON Schema for editors and CI, generated from the zod schema. Gate lists get a precise schema built
 * from the gate catalog (ids and parameters) so editors complete gate names too; validation checks the same catalog.
 */
export function planJsonSchema(): Record<string, unknown> {
  const gateEntry = z.union([
    z.enum(GATES.map((g) => g.id) as [string, ...string[]]),
    ...GATES.map((g) => z.strictObject({ [g.id]: g.params }).describe(g.title)),
  ])
  const gates = z.strictObject({
    pre: z.array(gateEntry).optional(),
    post: z.array(gateEntry).optional(),
    beforeNode: z.array(gateEntry).optional(),
    afterNode: z.array(gateEntry).optional(),
    wait: planSchema.shape.spec.shape.gates.unwrap().shape.wait,
    skip: planSchema.shape.spec.shape.gates.unwrap().shape.skip.unwrap()
      .element.extend({ gate: z.enum(GATES.map((g) => g.id) as [string, ...string[]]) }).array().optional()
      .describe('default gates turned off, each with a reason: the only way a default gate stops running'),
  })
  const schema = planSchema.extend({ spec: planSchema.shape.spec.extend({ gates: gates.optional() }) })
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://kupgrade.dev/schemas/upgradeplan-v1alpha1.json',
    title: `kupgrade UpgradePlan (${API_VERSION})`,
    ...Object.fromEntries(Object.entries(json).filter(([k]) => k !== '$schema')),
  }
}
