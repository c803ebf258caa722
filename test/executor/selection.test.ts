import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from '../helpers/run-cli.js'

/**
 * `--stage`, `--cluster` and `--approve` are checked against the plan before anything is read or written: a name the
 * plan lacks, or a cluster of no stage named, is exit 2 with what there is. Both given must meet: `apply --stage
 * staging --cluster production` once selected nothing and passed (exit 0, "nothing to do"), which in CI reads as done.
 * The plan's clusters do not exist (10.255.x): nothing here may get as far as trying them.
 */
const dir = mkdtempSync(join(tmpdir(), 'kupgrade-selection-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const cluster = (name: string, net: number) => `
    - name: ${name}
      distribution: k3s
      from: v1.29.6+k3s1
      apiEndpoint: https://10.255.${net}.1:6443
      nodes:
        - { name: ${name}-1, host: 10.255.${net}.2, role: control-plane }`
writeFileSync(join(dir, 'plan.yaml'), `apiVersion: kupgrade.dev/v1alpha1
kind: UpgradePlan
metadata: { name: selection }
spec:
  target: { kubernetes: v1.30.4 }
  stages:
    - { name: staging, clusters: [stg] }
    - { name: production, clusters: [prd-a, prd-b] }
  clusters:${cluster('stg', 1)}${cluster('prd-a', 2)}${cluster('prd-b', 3)}
`)

const apply = (...args: string[]) => runCli(['apply', 'plan.yaml', '--yes', ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir } })

describe('apply --stage / --cluster / --approve', () => {
  it.each([
    [['--stage', 'prod'], '--stage prod: the plan has no such stage (stages: staging, production)'],
    [['--cluster', 'prd-c'], '--cluster prd-c: the plan has no such cluster (clusters: stg, prd-a, prd-b)'],
    [['--stage', 'staging', '--cluster', 'prd-a'], '--cluster prd-a: not in stage staging (its clusters: stg)'],
    [['--stage', 'production', '--cluster', 'stg,prd-b'], '--cluster stg: not in stage production (its clusters: prd-a, prd-b)'],
    [['--approve', 'prod'], '--approve prod: the plan has no such stage (stages: staging, production)'],
  ])('%j is refused before anything runs', async (args, error) => {
    const r = await apply(...args)
    expect(r.code, r.out + r.err).toBe(2)
    expect(r.err).toContain(`error: ${error}`)
    expect(r.out).toBe('')
    expect(existsSync(join(dir, '.kupgrade'))).toBe(false)
  })
})

describe('restore --cluster', () => {
  it.each([[[]], [['--hop', '1']]])('a cluster the plan lacks is named as that (%j)', async (hop) => {
    const r = await runCli(['restore', join(dir, 'plan.yaml'), '--cluster', 'prd-c', ...hop], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir } })
    expect(r.code, r.out + r.err).toBe(2)
    expect(r.err).toContain('error: the plan has no cluster prd-c (clusters: stg, prd-a, prd-b)')
    expect(existsSync(join(dir, '.kupgrade'))).toBe(false)
  })
})
