import type { Principal } from '../principal.js';

/**
 * The demo principals (ids fixed by the external contract): seeded into the
 * database, named by the policy tests and by `policy:explain`.
 */
const principals: Principal[] = [
  { id: 'u-rep-1', displayName: '张伟', roles: ['sales_rep'], department: 'east', region: 'east-china', status: 'active' },
  { id: 'u-rep-2', displayName: '李娜', roles: ['sales_rep'], department: 'east', region: 'east-china', status: 'active' },
  { id: 'u-rep-3', displayName: '王强', roles: ['sales_rep'], department: 'west', region: 'west-china', status: 'active' },
  { id: 'u-mgr-1', displayName: '刘洋', roles: ['sales_manager'], department: 'east', region: 'east-china', status: 'active' },
  { id: 'u-cs-1', displayName: '陈静', roles: ['customer_service'], department: 'service', region: 'east-china', status: 'active' },
  { id: 'u-analyst-1', displayName: '杨帆', roles: ['analyst'], department: 'analytics', region: 'north-china', status: 'active' },
  { id: 'u-auditor-1', displayName: '赵敏', roles: ['auditor'], department: 'compliance', region: 'north-china', status: 'active' },
  { id: 'u-dpo-1', displayName: '黄磊', roles: ['dpo'], department: 'compliance', region: 'north-china', status: 'active' },
  { id: 'u-admin-1', displayName: '周杰', roles: ['admin'], department: 'it', region: 'north-china', status: 'active' },
  { id: 'u-gone-1', displayName: '吴昊', roles: ['sales_rep'], department: 'east', region: 'east-china', status: 'departed' },
];

// Frozen: the seed, the tests and the CLI share these objects.
export const demoPrincipals: Principal[] = principals.map((p) => Object.freeze({ ...p, roles: Object.freeze([...p.roles]) as string[] }));

/** The demo principal with this id, if any. */
export function demoPrincipal(id: string): Principal | undefined {
  return demoPrincipals.find((p) => p.id === id);
}
