import type { ReadDoc } from './port.js';

/** Keeps only the newest version of each document in a batch: what position-guarded writes converge to. */
export function newestPerId<T extends ReadDoc>(docs: T[]): T[] {
  const newest = new Map<string, T>();
  for (const d of docs) {
    const seen = newest.get(d._id);
    if (!seen || seen._position < d._position) newest.set(d._id, d);
  }
  return [...newest.values()];
}
