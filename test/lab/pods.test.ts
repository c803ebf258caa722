import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { labNodeFactory } from '../../src/lab/node-runtime.js'
import { eventually, smallTopology, startLab, type TestLab } from './helpers.js'

/**
 * Pods run what they say (issue 7 item 4), driven by real kubectl: the scheduler honours nodeName, nodeSelector,
 * taints/tolerations and capacity; a pod runs its own command in its node's bash with the pod's environment, its logs
 * are that command's output and its exit code decides Succeeded or Failed; a node that is down keeps it Pending; the
 * Service ClusterIP reaches the API server, and api-vip-unreachable breaks it for pods.
 */
const NET = '127.0.66'
type Obj = Record<string, any>

describe('lab pods', () => {
  let t: TestLab
  const ssh = (host: string, command: string) =>
    execa('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(t.dir, 'known_hosts')}`,
      '-o', 'GlobalKnownHostsFile=/dev/null', '-i', join(t.dir, 'id_ed25519'), '-p', '2222', `root@${host}`, command], { reject: false, timeout: 60_000 })
  const pod = async (name: string): Promise<Obj> => JSON.parse((await t.kubectl(['get', 'pod', name, '-o', 'json'])).stdout) as Obj
  const finished = (name: string, ms = 20_000) => eventually(async () => {
    const p = await pod(name)
    return ['Succeeded', 'Failed'].includes(p.status.phase) ? p : undefined
  }, ms, `pod ${name} to finish`)
  /** The log as the API serves it, byte for byte (kubectl's output through execa loses its final newline). */
  const logs = async (name: string) => {
    const r = await t.https(`/api/v1/namespaces/default/pods/${name}/log`)
    expect(r.status, r.body).toBe(200)
    return r.body
  }
  const schedulingMessage = async (name: string) => {
    const events = JSON.parse((await t.kubectl(['get', 'events', '--field-selector', `involvedObject.name=${name},reason=FailedScheduling`, '-o', 'json'])).stdout).items as Obj[]
    return events.map((e) => e.message as string).at(-1)
  }
  /** `kubectl run NAME --restart=Never` with the given image, command and spec overrides (JSON merge patch). */
  const run = (name: string, image: string, command: string[], overrides?: Obj) =>
    t.kubectl(['run', name, `--image=${image}`, '--restart=Never', ...(overrides ? [`--overrides=${JSON.stringify(overrides)}`] : []), '--command', '--', ...command])

  beforeAll(async () => {
    t = await startLab(smallTopology(NET, { distribution: 'kubeadm', workers: 2 }), { nodeFactory: labNodeFactory })
  }, 60_000)
  afterAll(async () => t?.stop())

  it('a probe pod that works on a real cluster works here: curl to $KUBERNETES_SERVICE_HOST reaches the API server; its logs are its own output', async () => {
    await run('api-probe', 'curlimages/curl', ['sh', '-c', 'curl -sSk --connect-timeout 2 https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/readyz && echo && echo "pod=$HOSTNAME $(hostname)" && curl -sSk https://kubernetes.default.svc/livez'])
    // What a client does: wait on a watch for the phase (the pod's status changes must reach watches).
    await t.kubectl(['wait', '--for=jsonpath={.status.phase}=Succeeded', 'pod/api-probe', '--timeout=30s'])
    const p = await finished('api-probe')
    expect(p.status.phase).toBe('Succeeded')
    expect(p.spec.nodeName).toMatch(/^w-/) // no toleration: never the control plane
    expect(p.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' })
    expect(await logs('api-probe')).toBe('ok\npod=api-probe api-probe\nok')
    expect((await t.kubectl(['logs', 'api-probe'])).stdout).toBe('ok\npod=api-probe api-probe\nok')
  })

  it('the exit code sets the phase; stderr is in the logs; env and args are the pod\'s', async () => {
    await run('fails', 'busybox', ['sh', '-c', 'echo "$GREETING to $1 on $NODE" ; echo broken >&2; exit 3', 'sh', 'you'],
      { spec: { containers: [{ name: 'fails', image: 'busybox', command: ['sh', '-c', 'echo "$GREETING to $1 on $NODE" ; echo broken >&2; exit 3', 'sh', 'you'], env: [{ name: 'GREETING', value: 'hello' }, { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }] }] } })
    const p = await finished('fails')
    expect(p.status.phase).toBe('Failed')
    expect(p.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' })
    expect(await logs('fails')).toBe(`hello to you on ${p.spec.nodeName}\nbroken\n`)
  })

  it('the control-plane taint keeps a pod off cp-1 (FailedScheduling); a toleration lets it run there', async () => {
    await run('on-cp', 'busybox', ['true'], { spec: { nodeSelector: { 'kubernetes.io/hostname': 'cp-1' } } })
    const msg = await eventually(() => schedulingMessage('on-cp'), 10_000, 'FailedScheduling for on-cp')
    expect(msg).toBe("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    expect((await pod('on-cp')).status.phase).toBe('Pending')
    await run('on-cp-tolerating', 'busybox', ['sh', '-c', 'echo ran'], {
      spec: { nodeSelector: { 'kubernetes.io/hostname': 'cp-1' }, tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] },
    })
    const p = await finished('on-cp-tolerating')
    expect(p.spec.nodeName).toBe('cp-1')
    expect(await logs('on-cp-tolerating')).toBe('ran\n')
  })

  it('capacity: a pod that requests more CPU than any node has stays Pending with Insufficient cpu', async () => {
    await run('too-big', 'busybox', ['true'], { spec: { containers: [{ name: 'too-big', image: 'busybox', command: ['true'], resources: { requests: { cpu: '64' } } }] } })
    const msg = await eventually(() => schedulingMessage('too-big'), 10_000, 'FailedScheduling for too-big')
    expect(msg).toMatch(/^0\/3 nodes are available: 1 node\(s\) had untolerated taint \{node-role\.kubernetes\.io\/control-plane: \}, 2 Insufficient cpu\./)
  })

  it('a pod bound to a node that is down stays Pending and runs once the node is Ready again; the scheduler avoids the node meanwhile', async () => {
    expect((await ssh(`${NET}.111`, 'systemctl stop kubelet')).exitCode).toBe(0)
    await eventually(async () => (await t.kubectl(['get', 'node', 'w-1', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'])).stdout === 'Unknown' || undefined, 20_000, 'w-1 not ready (after the node-monitor grace period)')
    await run('waits', 'busybox', ['sh', '-c', 'echo finally'], { spec: { nodeName: 'w-1' } })
    await run('avoids', 'busybox', ['true'], { spec: { nodeSelector: { 'kubernetes.io/hostname': 'w-1' } } })
    expect(await eventually(() => schedulingMessage('avoids'), 10_000, 'FailedScheduling for avoids')).toContain('1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }')
    await new Promise((r) => setTimeout(r, 500)) // give a wrongly started container the time to run
    const waiting = await pod('waits')
    expect(waiting.status.phase).toBe('Pending')
    expect(waiting.status.containerStatuses).toBeUndefined()
    const early = await t.kubectl(['logs', 'waits'], { reject: false })
    expect(early.stderr).toContain('is waiting to start: ContainerCreating')
    expect((await ssh(`${NET}.111`, 'systemctl start kubelet')).exitCode).toBe(0)
    expect((await finished('waits')).status.phase).toBe('Succeeded')
    expect(await logs('waits')).toBe('finally\n')
  }, 60_000)

  it('api-vip-unreachable on the cluster breaks the ClusterIP for pods (curl times out, exit 28, pod Failed), and only while it is on', async () => {
    const probe = (name: string) => run(name, 'curlimages/curl', ['curl', '-sSk', '--connect-timeout', '1', 'https://10.96.0.1:443/readyz'])
    t.lab.setFault({ fault: 'api-vip-unreachable', cluster: 'lab' }, true)
    try {
      await probe('vip-during')
      const p = await finished('vip-during')
      expect(p.status.phase).toBe('Failed')
      expect(p.status.containerStatuses[0].state.terminated.exitCode).toBe(28)
      expect(await logs('vip-during')).toBe('curl: (28) Failed to connect to 10.96.0.1 port 443 after 1000 ms: Timeout was reached\n')
    } finally {
      t.lab.setFault({ fault: 'api-vip-unreachable', cluster: 'lab' }, false)
    }
    // The nodes themselves are not affected by the "from pods" form of the fault.
    await probe('vip-after')
    expect((await finished('vip-after')).status.phase).toBe('Succeeded')
    expect(await logs('vip-after')).toBe('ok')
  }, 30_000)

  it('restartPolicy Always restarts an exiting container with back-off; deleting a pod stops its command', async () => {
    await t.kubectl(['run', 'crashes', '--image=busybox', '--restart=Always', '--command', '--', 'sh', '-c', 'echo once; exit 1'])
    const p = await eventually(async () => {
      const x = await pod('crashes')
      return x.status.containerStatuses?.[0]?.state.waiting ? x : undefined
    }, 20_000, 'crashes to back off')
    expect(p.status.phase).toBe('Running')
    expect(p.status.containerStatuses[0]).toMatchObject({ restartCount: 1, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } })
    const marker = `sleep ${1000 + Math.floor(Math.random() * 1000)}`
    await run('sleeper', 'busybox', ['sh', '-c', `${marker}; echo never`])
    await eventually(async () => (await pod('sleeper')).status.phase === 'Running' || undefined, 10_000, 'sleeper running')
    const alive = async () => (await execa('pgrep', ['-f', marker], { reject: false })).exitCode === 0
    await eventually(alive, 5_000, 'the container process')
    await t.kubectl(['delete', 'pod', 'sleeper', '--wait=false'])
    await eventually(async () => !(await alive()) || undefined, 10_000, 'the container process to stop')
  }, 40_000)

  it('the apiserver validates a pod: no image is a 422, several containers are refused with the reason', async () => {
    const r = await t.https('/api/v1/namespaces/default/pods', { method: 'POST', body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bad' }, spec: { containers: [{ name: 'c' }] } } })
    expect(r.status).toBe(422)
    expect(JSON.parse(r.body).message).toBe('Pod "bad" is invalid: spec.containers[0].image: Required value')
    const two = await t.https('/api/v1/namespaces/default/pods', { method: 'POST', body: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'two' }, spec: { containers: [{ name: 'a', image: 'x' }, { name: 'b', image: 'y' }] } } })
    expect(two.status).toBe(422)
    expect(JSON.parse(two.body).message).toContain('exactly one container')
  })
})
