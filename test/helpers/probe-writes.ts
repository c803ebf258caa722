import type { LabEvent } from '../../src/lab/recorder/types.js'

/**
 * The only writes a gate may make: create a pod in `default` (its name is in the body, not the path) and delete a
 * probe pod. Read-only commands (`check`, `plan --live`, `apply --dry-run`) leave exactly these and nothing else.
 */
export const isProbeWrite = (e: LabEvent): boolean => e.source === 'api' && e.resource === 'pods' && e.namespace === 'default' && !e.subresource &&
  ((e.method === 'POST' && !e.name) || (e.method === 'DELETE' && /^kupgrade-probe-(api-vip|dns)-[0-9a-f]{6}$/.test(e.name ?? '')))
