import { setTimeout as sleep } from 'node:timers/promises';

/** Thrown by a probe when waiting longer cannot help (e.g. the request reached another outcome). */
export class GiveUp extends Error {}

/**
 * Retries `probe` until it stops throwing or `timeoutMs` passes; then fails with what was
 * awaited and the probe's last complaint. Returns the probe's result.
 */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T>,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      if (Date.now() >= deadline)
        throw new Error(`waited ${timeoutMs} ms for ${what}: ${(error as Error).message}`, { cause: error });
    }
    await sleep(intervalMs);
  }
}

export { sleep };
