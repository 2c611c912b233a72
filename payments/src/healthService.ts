import * as grpc from '@grpc/grpc-js';
import type { HealthCheckRequest, HealthCheckResponse, HealthHandlers, HealthServingStatus } from '@settle/proto';

export type ServingStatus = Extract<HealthServingStatus, 'SERVING' | 'NOT_SERVING'>;

export interface HealthService {
  /** Handlers for `server.addService(loadHealthPackage().Health.service, handlers)`. */
  readonly handlers: HealthHandlers;
  /** Sets a service's status ('' is the server as a whole) and tells its watchers. */
  setStatus(service: string, status: ServingStatus): void;
  /**
   * Marks every service NOT_SERVING and ends open Watch streams: a graceful shutdown
   * waits for open calls, and a watcher's call would otherwise never end.
   */
  shutdown(): void;
}

type WatchCall = grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>;

/** The standard `grpc.health.v1.Health` service (Check and Watch), state in memory. */
export function createHealthService(initial: Record<string, ServingStatus> = {}): HealthService {
  const statuses = new Map<string, ServingStatus>(Object.entries(initial));
  const watchers = new Map<string, Set<WatchCall>>();

  const handlers: HealthHandlers = {
    Check(call, callback) {
      const status = statuses.get(call.request.service);
      if (status === undefined)
        return callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      callback(null, { status });
    },
    Watch(call) {
      const service = call.request.service;
      let set = watchers.get(service);
      if (!set) watchers.set(service, (set = new Set()));
      set.add(call);
      call.on('cancelled', () => set.delete(call));
      call.write({ status: statuses.get(service) ?? 'SERVICE_UNKNOWN' });
    },
  };

  function setStatus(service: string, status: ServingStatus): void {
    if (statuses.get(service) === status) return;
    statuses.set(service, status);
    for (const call of watchers.get(service) ?? []) call.write({ status });
  }

  return {
    handlers,
    setStatus,
    shutdown() {
      for (const service of statuses.keys()) setStatus(service, 'NOT_SERVING');
      for (const set of watchers.values()) for (const call of set) call.end();
      watchers.clear();
    },
  };
}
