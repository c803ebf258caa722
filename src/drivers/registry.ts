import type { Distribution } from '../plan/versions.js'
import { k0s } from './k0s.js'
import { k3s } from './k3s.js'
import { kubeadm } from './kubeadm.js'
import type { Driver } from './types.js'

/** Every distribution driver, in one explicit map (a test checks it against the distributions the schema allows). */
export const drivers: ReadonlyMap<Distribution, Driver> = new Map<Distribution, Driver>([
  ['k0s', k0s],
  ['k3s', k3s],
  ['kubeadm', kubeadm],
])

export const driverFor = (d: Distribution): Driver => {
  const driver = drivers.get(d)
  if (!driver) throw new Error(`no driver registered for distribution ${d}`)
  return driver
}
