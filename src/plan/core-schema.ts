import jsyaml from 'js-yaml'

/**
 * The YAML 1.2 core schema exactly as the `yaml` package resolves plain scalars (its schema/core), for js-yaml. js-yaml's
 * own CORE_SCHEMA is close but not equal: it reads `0b101`, `1_000` and `0o17`-style octals its own way, so the same
 * plan could mean one thing on the fast path and another on the positional one. These regular expressions and
 * conversions are copied from `yaml`; test/plan/fast-parse.test.ts checks the two agree on generated documents.
 */
const scalar = (tag: string, test: RegExp, construct: (s: string) => unknown) =>
  new jsyaml.Type(`tag:yaml.org,2002:${tag}`, {
    kind: 'scalar',
    resolve: (data: unknown) => typeof data === 'string' && test.test(data),
    construct: (data: string) => construct(data),
  })

const nullType = scalar('null', /^(?:~|[Nn]ull|NULL)?$/, () => null)
const boolType = scalar('bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T')
const INT = /^[-+]?[0-9]+$/
const OCT = /^0o[0-7]+$/
const HEX = /^0x[0-9a-fA-F]+$/
const intType = scalar('int', new RegExp(`${OCT.source}|${INT.source}|${HEX.source}`), (s) =>
  OCT.test(s) ? parseInt(s.substring(2), 8) : HEX.test(s) ? parseInt(s.substring(2), 16) : parseInt(s, 10))
const NAN_INF = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/
const EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/
const floatType = scalar('float', new RegExp(`${NAN_INF.source}|${EXP.source}|${FLOAT.source}`), (s) =>
  NAN_INF.test(s) ? (s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY) : parseFloat(s))

export const YAML_CORE_SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({ implicit: [nullType, boolType, intType, floatType] })
