import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import { ERR_CALLBACK_UNDELIVERED } from './errors.js';

/** An event the sandbox tells Settle about; `id` doubles as the Standard Webhooks message id. */
export interface SandboxEvent {
  type: string;
  id: string;
  data: Record<string, unknown>;
}

export interface CallbackSenderOptions {
  url: string;
  /** `whsec_…` base64 secret shared with Settle's callback endpoint. */
  webhookSecret: string;
  /** Pause before each retry; one entry per retry, so its length caps the retries. */
  retryDelaysMs: readonly number[];
  /** Per-delivery HTTP timeout. */
  timeoutMs: number;
  logger: Logger;
  now: () => Date;
}

export interface CallbackSender {
  /**
   * Sends the event built by `build` after `delayMs`, retrying on non-2xx and network errors;
   * `settled` runs once it was delivered or given up on (not when the sender is closed first).
   */
  send(delayMs: number, build: () => SandboxEvent, settled?: (id: string) => void): void;
  /** Cancels pending deliveries and retries, and aborts the ones in flight. */
  close(): Promise<void>;
}

export function createCallbackSender(opts: CallbackSenderOptions): CallbackSender {
  const webhook = new Webhook(opts.webhookSecret);
  const dispatcher = new Agent();
  const abort = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const later = (ms: number, fn: () => void): void => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    // A sandbox waiting to send a callback is no reason for a process to stay up.
    timer.unref();
    timers.add(timer);
  };

  async function deliver(
    event: SandboxEvent,
    payload: string,
    attempt: number,
    settled?: (id: string) => void,
  ): Promise<void> {
    const log = opts.logger.child({ webhookId: event.id, type: event.type, attempt });
    // Re-signed per attempt: the timestamp must be fresh for the receiver's tolerance window.
    const timestamp = opts.now();
    let failure: string;
    try {
      const res = await request(opts.url, {
        method: 'POST',
        dispatcher,
        signal: AbortSignal.any([abort.signal, AbortSignal.timeout(opts.timeoutMs)]),
        headers: {
          'content-type': 'application/json',
          'webhook-id': event.id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': webhook.sign(event.id, timestamp, payload),
        },
        body: payload,
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) {
        log.debug({ httpStatus: res.statusCode }, 'sandbox callback delivered');
        settled?.(event.id);
        return;
      }
      failure = `HTTP ${res.statusCode}`;
    } catch (err) {
      if (closed) return;
      failure = err instanceof Error ? err.message : String(err);
    }
    const delay = opts.retryDelaysMs[attempt - 1];
    if (delay === undefined) {
      log.error({ code: ERR_CALLBACK_UNDELIVERED, failure }, 'sandbox callback undelivered, giving up');
      settled?.(event.id);
      return;
    }
    log.warn({ failure, retryInMs: delay }, 'sandbox callback failed, will retry');
    later(delay, () => void deliver(event, payload, attempt + 1, settled));
  }

  return {
    send(delayMs, build, settled) {
      later(delayMs, () => {
        const event = build();
        void deliver(event, JSON.stringify(event), 1, settled);
      });
    },
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      abort.abort();
      await dispatcher.destroy();
    },
  };
}
