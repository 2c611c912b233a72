import type { FieldCondition, Filter, FindOptions, Scalar } from './port.js';

const get = (doc: Record<string, unknown>, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), doc);

const cmp = (a: unknown, b: unknown): number => {
  if (a === b) return 0;
  if (a === undefined || a === null) return -1;
  if (b === undefined || b === null) return 1;
  return (a as Scalar)! < (b as Scalar)! ? -1 : 1;
};

function test(value: unknown, cond: FieldCondition): boolean {
  if (cond === null || typeof cond !== 'object') return value === cond || (cond === null && value === undefined);
  if ('$in' in cond) return cond.$in.some((v) => v === value);
  const c = cond as Exclude<FieldCondition, Scalar | { $in: Scalar[] }>;
  if (c.$exists !== undefined && (value !== undefined) !== c.$exists) return false;
  if (c.$ne !== undefined && value === c.$ne) return false;
  if (c.$gt !== undefined && !(value != null && cmp(value, c.$gt) > 0)) return false;
  if (c.$gte !== undefined && !(value != null && cmp(value, c.$gte) >= 0)) return false;
  if (c.$lt !== undefined && !(value != null && cmp(value, c.$lt) < 0)) return false;
  if (c.$lte !== undefined && !(value != null && cmp(value, c.$lte) <= 0)) return false;
  return true;
}

/** Evaluates the read store's filter language in memory, with MongoDB's meaning. */
export const matches = (doc: Record<string, unknown>, filter: Filter = {}): boolean =>
  Object.entries(filter).every(([path, cond]) => test(get(doc, path), cond));

export function applyFind<T extends Record<string, unknown>>(docs: Iterable<T>, opts: FindOptions = {}): T[] {
  let out = [...docs].filter((d) => matches(d, opts.filter));
  if (opts.sort && opts.sort.length > 0) {
    const sort = opts.sort;
    out.sort((a, b) => {
      for (const [field, dir] of sort) {
        const c = cmp(get(a, field), get(b, field));
        if (c !== 0) return c * dir;
      }
      return 0;
    });
  }
  if (opts.skip) out = out.slice(opts.skip);
  if (opts.limit !== undefined) out = out.slice(0, opts.limit);
  return out;
}
