import { describe, expect, it } from 'vitest'
import { applyPatch, mergePatch } from '../../src/lab/api/patch.js'

/** PATCH bodies as the apiserver applies them: RFC 6902 all-or-nothing, RFC 7386 merge where null deletes. */
const doc = { metadata: { name: 'lock', labels: { a: '1', 'x/y': '2' } }, spec: { holderIdentity: 'a', list: [1, 2, 3] } }
const json = (ops: unknown) => applyPatch(doc, JSON.stringify(ops), 'application/json-patch+json')

describe('lab API patches', () => {
  it('applies every RFC 6902 operation, with ~1 for "/" in keys', () => {
    const r = json([
      { op: 'test', path: '/spec/holderIdentity', value: 'a' },
      { op: 'replace', path: '/spec/holderIdentity', value: 'b' },
      { op: 'add', path: '/spec/list/1', value: 9 },
      { op: 'add', path: '/spec/list/-', value: 4 },
      { op: 'remove', path: '/metadata/labels/x~1y' },
      { op: 'copy', from: '/metadata/name', path: '/metadata/labels/name' },
      { op: 'move', from: '/metadata/labels/a', path: '/metadata/labels/b' },
    ])
    expect(r).toEqual({ object: { metadata: { name: 'lock', labels: { name: 'lock', b: '1' } }, spec: { holderIdentity: 'b', list: [1, 9, 2, 3, 4] } } })
  })

  it('is all or nothing: a failed test or a missing path is an error and the input is untouched', () => {
    expect(json([{ op: 'replace', path: '/spec/holderIdentity', value: 'b' }, { op: 'test', path: '/spec/holderIdentity', value: 'a' }])).toEqual({ error: 'testing value /spec/holderIdentity failed: test failed' })
    expect(json([{ op: 'remove', path: '/spec/nope' }])).toHaveProperty('error')
    expect(json([{ op: 'replace', path: '/status/x', value: 1 }])).toHaveProperty('error')
    expect(doc.spec.holderIdentity).toBe('a')
  })

  it('merge patches recurse and delete with null; a body that is not JSON is a bad request', () => {
    expect(mergePatch(doc, { metadata: { labels: { a: null, c: '3' } }, spec: { list: [7] } })).toEqual({ metadata: { name: 'lock', labels: { 'x/y': '2', c: '3' } }, spec: { holderIdentity: 'a', list: [7] } })
    expect(applyPatch(doc, '{', 'application/merge-patch+json')).toHaveProperty('badRequest')
    expect(applyPatch(doc, '{"op":"add"}', 'application/json-patch+json')).toHaveProperty('badRequest')
  })
})
