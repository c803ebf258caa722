import { describe, expect, it } from 'vitest'
import { formatDuration, parseDuration } from '../../src/util/duration.js'

describe('parseDuration', () => {
  it.each([
    ['0s', 0],
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['2d', 172_800_000],
    ['1.5s', 1500],
    ['1h1m1s1ms', 3_661_001],
    [' 5m ', 300_000],
    ['1m1m', 120_000],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  // A bare number is refused: "timeout: 300" is ambiguous, and an ambiguous drain timeout is how drains wait forever.
  it.each(['', '300', '5 minutes', '5M', '-1s', '1h30', 'forever', 'm5', '5mm', '1.s', 's', '1w', '5m 30s', 'PT5M'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined()
  })
})

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [250, '250ms'],
    [1000, '1s'],
    [90_000, '1m30s'],
    [5_400_000, '1h30m'],
    [90_061_000, '1d1h1m1s'],
    [1499, '1s'],
    [1500, '2s'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text)
  })

  it('round-trips whole seconds', () => {
    for (const ms of [1000, 61_000, 3_600_000, 3_661_000, 86_400_000, 90_061_000]) expect(parseDuration(formatDuration(ms))).toBe(ms)
  })
})
