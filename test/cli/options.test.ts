import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { deadlineOption, list } from '../../src/cli/options.js'

describe('shared option parsers', () => {
  it('list: repeatable and comma-separated alike, blanks dropped', () => {
    const o = new Command().exitOverride().option('--cluster <c>', '', list).parse(['--cluster', 'a', '--cluster', 'b, c,', '--cluster', ''], { from: 'user' }).opts<{ cluster: string[] }>()
    expect(o.cluster).toEqual(['a', 'b', 'c'])
  })

  it('deadline: a positive duration up to a day', () => {
    expect(deadlineOption('90s')).toBe(90_000)
    for (const bad of ['0s', '25h', 'soon']) expect(() => deadlineOption(bad)).toThrow(/--deadline must be a positive duration up to 24h/)
  })
})
