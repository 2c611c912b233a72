import { AsyncLocalStorage } from 'node:async_hooks';

/** What every log line and every appended event inherits from the work in progress. */
export interface WorkContext {
  correlationId: string;
  causationId?: string;
  actor?: string;
  traceparent?: string;
  tracestate?: string;
}

const storage = new AsyncLocalStorage<WorkContext>();

export const runWithContext = <T>(ctx: WorkContext, fn: () => T): T => storage.run(ctx, fn);
export const currentContext = (): WorkContext | undefined => storage.getStore();
