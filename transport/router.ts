/** Plans choose the transport per host, so lab hosts (local) and real ones (ssh) mix in one fleet. */
import type { Transport as TransportSpec } from '../core/plan';
import type { HostRunner } from './transport';

export function createRoutingTransport(byKind: Record<TransportSpec['kind'], HostRunner>): HostRunner {
  return {
    run(host, command, options) {
      return byKind[host.transport.kind].run(host, command, options);
    },
    async close() {
      await Promise.all(Object.values(byKind).map((transport) => transport.close()));
    },
  };
}
