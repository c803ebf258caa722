import { describe, expect, it } from 'vitest'
import { apiRequestFor, watchPaths, type ApiRequest } from '../../src/transport/kubectl/api-request.js'

const path = (args: string[], stdin?: string) => apiRequestFor(args, stdin)?.path

describe('kubectl calls as the API requests kubectl sends for them', () => {
  it('maps the reads kupgrade makes to their paths', () => {
    expect(path(['get', '--raw', '/version'])).toBe('/version')
    expect(path(['get', 'nodes', '-o', 'json'])).toBe('/api/v1/nodes')
    expect(path(['get', 'node', 'w-1', '-o', 'json'])).toBe('/api/v1/nodes/w-1')
    expect(path(['get', 'pods', '-n', 'kube-system', '-o', 'json'])).toBe('/api/v1/namespaces/kube-system/pods')
    expect(path(['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=kube-proxy', '-o', 'json'])).toBe('/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-proxy')
    expect(path(['get', 'pods', '--all-namespaces', '--field-selector=status.phase=Pending', '-o', 'json'])).toBe('/api/v1/pods?fieldSelector=status.phase%3DPending')
    expect(path(['get', 'service', 'kubernetes', '-n', 'default', '-o', 'json'])).toBe('/api/v1/namespaces/default/services/kubernetes')
    expect(path(['get', 'poddisruptionbudgets', '--all-namespaces', '-o', 'json'])).toBe('/apis/policy/v1/poddisruptionbudgets')
    expect(path(['get', 'lease', 'kupgrade-lock', '-n', 'kube-system', '-o', 'json'])).toBe('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kupgrade-lock')
    expect(path(['get', 'events', '--all-namespaces', '-o', 'json'])).toBe('/api/v1/events')
    expect(path(['logs', '-n', 'kube-system', 'kube-proxy-x', '--since=120s'])).toBe('/api/v1/namespaces/kube-system/pods/kube-proxy-x/log?sinceSeconds=120')
    expect(path(['logs', 'p', '-n', 'default', '-c', 'probe'])).toBe('/api/v1/namespaces/default/pods/p/log?container=probe')
  })

  it('names with characters a path must escape are escaped, never spliced', () => {
    expect(path(['get', 'node', 'a/../b', '-o', 'json'])).toBe('/api/v1/nodes/a%2F..%2Fb')
    expect(path(['get', 'pods', '-n', 'x?y', '-o', 'json'])).toBe('/api/v1/namespaces/x%3Fy/pods')
  })

  it('leaves to kubectl what the arguments alone do not decide', () => {
    for (const args of [
      ['get', 'pods', '-o', 'json'], // the kubeconfig's namespace would decide
      ['get', 'nodes'], // a table, not JSON
      ['get', 'node', 'x', '-o', 'jsonpath={.spec.unschedulable}'],
      ['get', 'node', 'x', '--ignore-not-found', '-o', 'name'],
      ['get', 'ingresses.v1beta1.networking.k8s.io', '--all-namespaces', '-o', 'json'], // needs discovery
      ['get', 'nodes', '-n', 'x', '-o', 'json'],
      ['get', 'pod', 'p', '--all-namespaces', '-o', 'json'],
      ['get', '--raw', 'version'],
      ['get', 'pods', '-n', '-o', 'json'],
      ['logs', 'p'],
      ['logs', 'p', '-n', 'ns', '-f'],
      ['cordon', 'w-1', '--dry-run=server'],
      ['cordon', '-l', 'role=worker'],
      ['uncordon'],
      ['drain', 'w-1', '--ignore-daemonsets'],
      ['replace', '-f', '-', '-o', 'json'],
      ['delete', 'pod', 'p', '-n', 'ns'], // without --ignore-not-found a 404 is an error kubectl words
    ]) expect(apiRequestFor(args), args.join(' ')).toBeUndefined()
    expect(apiRequestFor(['get', 'nodes', '-o', 'json'], '{}')).toBeUndefined()
  })

  it('creates only a Pod that names its namespace, and prints what kubectl -o name prints', () => {
    const pod = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe-1', namespace: 'default' }, spec: {} })
    const r = apiRequestFor(['create', '-f', '-', '-o', 'name'], pod)!
    expect(r).toMatchObject({ method: 'POST', path: '/api/v1/namespaces/default/pods?fieldManager=kubectl-create', body: pod })
    expect(r.output(JSON.stringify({ metadata: { name: 'probe-1' } }))).toBe('pod/probe-1\n')
    expect(apiRequestFor(['create', '-f', '-', '-o', 'name'], JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }))).toBeUndefined()
    expect(apiRequestFor(['create', '-f', '-', '-o', 'name'], JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'p', namespace: 'd' } }))).toBeUndefined()
    expect(apiRequestFor(['create', '-f', '-', '-o', 'name'], 'not json')).toBeUndefined()
  })

  it('a delete with --ignore-not-found treats 404 as done, printing nothing as kubectl does', () => {
    const r = apiRequestFor(['delete', 'pod', 'p', '-n', 'default', '--ignore-not-found', '--wait=false'])!
    expect(r).toMatchObject({ method: 'DELETE', path: '/api/v1/namespaces/default/pods/p', okStatus: 404, okOutput: '' })
    expect(r.output('{}')).toBe('pod "p" deleted\n')
  })

  it('cordon and uncordon read the Node, write nothing when it already is as asked, else patch spec.unschedulable', () => {
    const node = (unschedulable?: boolean) => JSON.stringify({ metadata: { name: 'w-1' }, spec: unschedulable === undefined ? {} : { unschedulable } })
    const cordon = apiRequestFor(['cordon', 'w-1'])!
    expect(cordon).toMatchObject({ method: 'GET', path: '/api/v1/nodes/w-1' })
    expect(cordon.then!(node(true))).toEqual({ output: 'node/w-1 already cordoned\n' })
    for (const schedulable of [node(), node(false)]) {
      const patch = cordon.then!(schedulable) as ApiRequest
      expect(patch).toMatchObject({ method: 'PATCH', path: '/api/v1/nodes/w-1?fieldManager=kupgrade', contentType: 'application/strategic-merge-patch+json' })
      expect(JSON.parse(patch.body!)).toEqual({ spec: { unschedulable: true } })
      expect(patch.output('{}')).toBe('node/w-1 cordoned\n')
    }
    const uncordon = apiRequestFor(['uncordon', 'w-1'])!
    expect(uncordon.then!(node())).toEqual({ output: 'node/w-1 already uncordoned\n' })
    expect(uncordon.then!(node(false))).toEqual({ output: 'node/w-1 already uncordoned\n' })
    const patch = uncordon.then!(node(true)) as ApiRequest
    // kubectl's two-way merge patch removes the field (false is its zero value, omitted from the Node).
    expect(JSON.parse(patch.body!)).toEqual({ spec: { unschedulable: null } })
    expect(patch.output('{}')).toBe('node/w-1 uncordoned\n')
    expect(apiRequestFor(['cordon', 'a/b'])!.path).toBe('/api/v1/nodes/a%2Fb')
  })

  it('a list is printed as kubectl prints it: a List whose items carry their apiVersion and kind', () => {
    const r = apiRequestFor(['get', 'nodes', '-o', 'json'])!
    const out = JSON.parse(r.output(JSON.stringify({ kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '9' }, items: [{ metadata: { name: 'a' } }] })))
    expect(out).toEqual({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'a' } }] })
  })

  it('watch targets: the object and its collection', () => {
    expect(watchPaths(['node', 'w-1'])).toEqual({ object: '/api/v1/nodes/w-1', collection: '/api/v1/nodes', name: 'w-1' })
    expect(watchPaths(['pod', 'p', '-n', 'default'])).toEqual({ object: '/api/v1/namespaces/default/pods/p', collection: '/api/v1/namespaces/default/pods', name: 'p' })
    expect(watchPaths(['pod', 'p'])).toBeUndefined()
    expect(watchPaths(['nodes'])).toBeUndefined()
  })
})
