/**
 * Hosts and their roles: the DB-owner role, the steps a host runs, and how a validated plan answers "who owns the
 * database, how is this host reached, what does it run for a step". Both schema.ts and rules.ts need these
 * constants, so they live here rather than in either, and the two never import each other at run time.
 */
import { ownValue } from './names';
import type { Host, StepCommand, Transport, UpgradePlan } from './schema';

export const DB_OWNER_ROLE = 'db-owner';

/** Host steps, in the order the procedure runs them on one host. */
export const HOST_STEPS = ['version', 'drain', 'stop', 'upgrade', 'start', 'verify', 'online'] as const;
export type HostStepName = (typeof HOST_STEPS)[number];

/** Steps every application role has: rollback and verify rely on them. The others a role declares if its hosts have them. */
export const REQUIRED_STEPS: readonly HostStepName[] = ['version', 'upgrade', 'verify'];

/**
 * Kinds of host the vendor procedures tell apart. App-V 4.5: a Management Server, the Management Web Service (either
 * may upgrade the data store), a computer with only the Management Console. Dynamics GP web components: the web site
 * with the Session Central Service (it creates the new configuration database) and the session hosts.
 */
export const HOST_KINDS = ['management-server', 'management-web-service', 'console', 'web-site', 'session-host'] as const;
export type HostKind = (typeof HOST_KINDS)[number];

/** Kinds that never own the database, each with why. */
export const NEVER_DB_OWNER: Partial<Record<HostKind, string>> = {
  console: 'a console-only host has no server component to upgrade the database',
  'session-host': 'the host with the web site and Session Central Service creates the new configuration database, never a session host',
};

/** Steps a kind has no use for: a console has no service to drain, stop, start or bring online. */
export const NO_SERVICE_STEPS: Partial<Record<HostKind, readonly HostStepName[]>> = {
  console: ['drain', 'stop', 'start', 'online'],
};

export function dbOwner(plan: UpgradePlan): Host {
  const owner = plan.hosts.find((host) => host.roles.includes(DB_OWNER_ROLE));
  if (!owner) throw new Error('validated plan without a DB owner');
  return owner;
}

/** The host whose transport runs the database's commands: database.host, or the DB owner. */
export function databaseHost(plan: UpgradePlan): Host {
  const id = plan.database.host ?? dbOwner(plan).id;
  const host = plan.hosts.find((h) => h.id === id);
  if (!host) throw new Error(`validated plan without its database host ${id}`);
  return host;
}

export function applicationRole(host: Host): string {
  const role = host.roles.find((r) => r !== DB_OWNER_ROLE);
  if (!role) throw new Error(`validated host ${host.id} without an application role`);
  return role;
}

/** How a host is reached: its own transport, or the plan's with the host's address (its id when it gives none). */
export function hostTransport(plan: Pick<UpgradePlan, 'transport'>, host: Host): Transport {
  if (host.transport) return host.transport;
  return plan.transport.kind === 'ssh' ? { ...plan.transport, address: host.address ?? host.id } : plan.transport;
}

/** The command a host runs for a step: the db-owner role's own definition wins on the owning host. */
export function hostCommand(plan: UpgradePlan, host: Host, step: HostStepName): StepCommand | undefined {
  if (host.roles.includes(DB_OWNER_ROLE)) {
    const own = ownValue(plan.roles, DB_OWNER_ROLE)?.steps[step];
    if (own) return own;
  }
  return ownValue(plan.roles, applicationRole(host))?.steps[step];
}
