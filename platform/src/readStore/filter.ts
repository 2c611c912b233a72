import type { FieldCondition, Filter, FindOptions, Scalar } from './port.js';

const RANGE_OPS = ['$gt', '$gte', '$lt', '$lte'] as const;
const OPERATORS = new Set(['$in', '$ne', '$exists', ...RANGE_OPS]);

const isScalar = (v: unknown): v is Scalar => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/**
 * Rejects anything outside the filter subset (unknown operators, object values), so a filter
 * built from user input can never smuggle a server-side operator (`$where`, `$regex`) through.
 */
export function assertFilter(filter: Filter = {}): void {
  for (const [path, cond] of Object.entries(filter)) {
    if (path.startsWith('$') || path === '') throw new TypeError(`read store filter: invalid field name "${path}"`);
    if (isScalar(cond)) continue;
    if (typeof cond !== 'object' || Array.isArray(cond))
      throw new TypeError(`read store filter: invalid condition on "${path}"`);
    const ops = Object.keys(cond);
    if (ops.length === 0) throw new TypeError(`read store filter: empty condition on "${path}"`);
    for (const [op, arg] of Object.entries(cond)) {
      if (!OPERATORS.has(op)) throw new TypeError(`read store filter: unsupported operator ${op} on "${path}"`);
      if (op === '$in' && !(Array.isArray(arg) && arg.every(isScalar)))
        throw new TypeError(`read store filter: $in on "${path}" needs a list of scalars`);
      if (op === '$exists' && typeof arg !== 'boolean')
        throw new TypeError(`read store filter: $exists on "${path}" needs a boolean`);
      if (op !== '$in' && op !== '$exists' && !isScalar(arg))
        throw new TypeError(`read store filter: ${op} on "${path}" needs a scalar`);
    }
    if ('$in' in cond && ops.length > 1)
      throw new TypeError(`read store filter: $in on "${path}" cannot be combined with other operators`);
  }
}

export function assertFindOptions(opts: FindOptions): void {
  for (const k of ['limit', 'skip'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0))
      throw new RangeError(`read store find: ${k} must be a non-negative integer, got ${v}`);
  }
  for (const [field, dir] of opts.sort ?? [])
    if (dir !== 1 && dir !== -1) throw new RangeError(`read store find: sort direction of "${field}" must be 1 or -1`);
}

/**
 * The values a dotted path reaches, MongoDB-style: through arrays of sub-documents (each element),
 * numeric segments index arrays; `undefined` stands for "missing somewhere along the way".
 */
function resolve(value: unknown, parts: string[], i = 0): unknown[] {
  if (i === parts.length) return [value];
  const key = parts[i]!;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    if (/^\d+$/.test(key)) out.push(...resolve(value[Number(key)], parts, i + 1));
    for (const el of value)
      if (el !== null && typeof el === 'object' && !Array.isArray(el)) out.push(...resolve(el, parts, i));
    return out.length > 0 ? out : [undefined];
  }
  if (value !== null && typeof value === 'object')
    return resolve((value as Record<string, unknown>)[key], parts, i + 1);
  return [undefined];
}

/**
 * BSON comparison order (MongoDB's, for sorting and type-bracketed range queries):
 * missing/null < numbers < strings < objects < arrays < booleans.
 */
const rank = (v: unknown): number => {
  if (v === undefined || v === null) return 1;
  if (typeof v === 'number') return 2;
  if (typeof v === 'string') return 3;
  if (Array.isArray(v)) return 5;
  if (typeof v === 'boolean') return 8;
  return 4;
};

/** Strings compare by code point (= UTF-8 byte order, as MongoDB's simple collation), not UTF-16 unit. */
function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above U+FFFF: move them above U+E000–FFFF.
    x = x >= 0xe000 ? x - 0x800 : x >= 0xd800 ? x + 0x2000 : x;
    y = y >= 0xe000 ? y - 0x800 : y >= 0xd800 ? y + 0x2000 : y;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : 1;
}

/** Total order over values, following BSON's type order first. */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra < rb ? -1 : 1;
  if (ra === 1) return 0;
  if (ra === 2) return (a as number) === (b as number) ? 0 : (a as number) < (b as number) ? -1 : 1;
  if (ra === 3) return compareStrings(a as string, b as string);
  if (ra === 8) return a === b ? 0 : a ? 1 : -1;
  return compareStrings(JSON.stringify(a), JSON.stringify(b));
}

const leaves = (candidates: unknown[]): unknown[] => candidates.flatMap((v) => (Array.isArray(v) ? v : [v]));

/** Equality as MongoDB means it: an array matches if one element does; `null` also matches "missing". */
function equals(candidates: unknown[], x: Scalar): boolean {
  if (x === null && candidates.some((v) => v === undefined)) return true;
  return leaves(candidates).some((v) => v === x);
}

function inRange(candidates: unknown[], op: (typeof RANGE_OPS)[number], bound: Scalar): boolean {
  // A null bound only meets null/missing: $gte/$lte null are equality with null, $gt/$lt null match nothing.
  if (bound === null) return op === '$gte' || op === '$lte' ? equals(candidates, null) : false;
  return leaves(candidates).some((v) => {
    if (v === undefined || v === null || rank(v) !== rank(bound)) return false;
    const c = compareValues(v, bound);
    return op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0;
  });
}

function test(candidates: unknown[], cond: FieldCondition): boolean {
  if (isScalar(cond)) return equals(candidates, cond);
  if ('$in' in cond) return cond.$in.some((x) => equals(candidates, x));
  const c = cond as Exclude<FieldCondition, Scalar | { $in: Scalar[] }>;
  if (c.$exists !== undefined && candidates.some((v) => v !== undefined) !== c.$exists) return false;
  if (c.$ne !== undefined && equals(candidates, c.$ne)) return false;
  for (const op of RANGE_OPS) if (c[op] !== undefined && !inRange(candidates, op, c[op])) return false;
  return true;
}

/** Evaluates the read store's filter language in memory, with MongoDB's meaning (checked against FerretDB). */
export const matches = (doc: Record<string, unknown>, filter: Filter = {}): boolean =>
  Object.entries(filter).every(([path, cond]) => test(resolve(doc, path.split('.')), cond));

/** The value a document sorts by on `path`: arrays sort by their least element ascending, greatest descending. */
function sortKey(doc: Record<string, unknown>, path: string, dir: 1 | -1): unknown {
  const values = leaves(resolve(doc, path.split('.')));
  if (values.length === 0) return undefined;
  return values.reduce((best, v) => (compareValues(v, best) * dir < 0 ? v : best));
}

/**
 * Sort keys with `_id` appended as the final tie-breaker (unless sorted on already), so equal
 * keys come back in the same order on every adapter and pages never overlap.
 */
export const sortWithTieBreak = (sort: FindOptions['sort'] = []): [string, 1 | -1][] =>
  sort.length === 0 || sort.some(([f]) => f === '_id') ? [...sort] : [...sort, ['_id', 1]];

export function applyFind<T extends Record<string, unknown>>(docs: Iterable<T>, opts: FindOptions = {}): T[] {
  assertFilter(opts.filter);
  assertFindOptions(opts);
  if (opts.limit === 0) return [];
  let out = [...docs].filter((d) => matches(d, opts.filter));
  if (opts.sort && opts.sort.length > 0) {
    const sort = sortWithTieBreak(opts.sort);
    out.sort((a, b) => {
      for (const [field, dir] of sort) {
        const c = compareValues(sortKey(a, field, dir), sortKey(b, field, dir));
        if (c !== 0) return c * dir;
      }
      return 0;
    });
  }
  if (opts.skip) out = out.slice(opts.skip);
  if (opts.limit !== undefined) out = out.slice(0, opts.limit);
  return out;
}
