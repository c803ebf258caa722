import { planJsonSchema } from '../../plan/json-schema.js'
import type { RegisterCommand } from './index.js'

export const register: RegisterCommand = (program, ctx) => {
  program
    .command('schema')
    .description("print the plan's JSON Schema (for editors and CI); plans/schema.json ships the same")
    .action(() => {
      ctx.stdout.write(`${JSON.stringify(planJsonSchema(), null, 2)}\n`)
    })
}
