/**
 * The V8 flags every `settle` process runs with, for its memory (issue 6, B6: peak RSS of the
 * all-in-one process ≤ 300 MB). Measured in bench/README.md ("B6"), where each figure comes from.
 *
 * V8 reads these flags only when it starts (`v8.setFlagsFromString` later does not stop a tier-up
 * or resize a heap already set up), so the `settle` launcher re-executes itself with them — same
 * process id, environment and stdio; see {@link ensureV8Flags}. A group is left out when the
 * operator already decided it: a flag of theirs on the command line or in `NODE_OPTIONS` wins.
 */
export interface V8FlagGroup {
  /** What the group is for. */
  purpose: string;
  flags: readonly string[];
  /** A flag (underscores read as dashes) by which the operator already decided this. */
  decidedBy: RegExp;
}

export const V8_FLAG_GROUPS: readonly V8FlagGroup[] = [
  {
    // The embedded event store is PGlite, PostgreSQL compiled to WebAssembly. V8 recompiles a hot
    // WebAssembly function with its optimising compiler in the background, and one of PGlite's
    // (function 2272, a 105 kB body) needs ~600 MB of compiler memory for it
    // (`--trace-wasm-compilation-times`: "603850776 / 637873304 max/total bytes", 0.9 s): every
    // embedded process went 150 → ~780 MB within seconds of opening its store. Liftoff (the
    // baseline compiler) only: no such peak, and no more CPU per request on the same load.
    purpose: 'WebAssembly on its baseline compiler only',
    flags: ['--no-wasm-tier-up', '--no-wasm-dynamic-tiering'],
    decidedBy: /^--(no-)?(wasm-tier-up|wasm-dynamic-tiering|liftoff|liftoff-only)(=|$)/,
  },
  {
    // V8's default on a 64-bit machine without pointer compression (Node's build) grows the young
    // generation to 2 × 64 MB under load; 8 MB semi-spaces keep it at a few tens of MB. Most of what
    // a request allocates dies young either way.
    purpose: 'a young generation of 8 MB semi-spaces',
    flags: ['--max-semi-space-size=8'],
    decidedBy: /^--(max-semi-space-size|max-heap-size|optimize-for-size)(=|$)/,
  },
  {
    // V8 runs its first full collection only when the old generation reaches its initial limit
    // (by default half the maximum heap, capped at several hundred MB), and after each one lets it
    // grow to 1.1–4 × what survived, the more the faster the process allocates. Under B2's load on
    // PostgreSQL the heap's pages reached 257 MB while a heap snapshot (taken after a full
    // collection) held 77 MB of JavaScript: the rest was garbage not collected yet. The limit is
    // per isolate: PGlite's thread (15 MB live) grew to 62 MB before its first full collection with
    // a 64 MB initial limit, 41 MB with 32 MB (embedded VmHWM 346 → 328 MB, same CPU).
    purpose: 'an initial old-generation limit of 32 MB',
    flags: ['--initial-old-space-size=32'],
    decidedBy: /^--(initial-old-space-size|initial-heap-size|max-heap-size)(=|$)/,
  },
  {
    // Then a fixed factor of 1.5 instead of V8's 1.1–4: 6,000 requests at 64 connections on
    // PostgreSQL, VmHWM 452 → 283 MB, CPU per request unchanged within the noise (a factor of
    // 1.25 gave 252 MB but ~20 % more CPU per request).
    purpose: 'old-generation growth of 1.5 × what survived a full collection',
    flags: ['--heap-growing-percent=50'],
    decidedBy: /^--heap-growing-percent(=|$)/,
  },
];

/** Node's own flags, and V8 flags written with underscores, in the dashed form the groups match. */
const normalise = (arg: string): string => {
  const eq = arg.indexOf('=');
  const name = eq === -1 ? arg : arg.slice(0, eq);
  return name.replaceAll('_', '-') + (eq === -1 ? '' : arg.slice(eq));
};

/**
 * The argument vector to re-execute this process with so that it runs with the groups' flags it
 * does not have yet, or undefined when nothing is missing (they are there, or the operator
 * decided each missing group with a flag of their own, e.g. `node --wasm-tier-up
 * cli/bin/settle.js start` for V8's default WebAssembly tiering).
 */
export function reexecArgs(
  execPath: string,
  execArgv: readonly string[],
  argv: readonly string[],
  nodeOptions = '',
): string[] | undefined {
  const given = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(normalise);
  const missing = V8_FLAG_GROUPS.filter((g) => !given.some((a) => g.decidedBy.test(a))).flatMap((g) => g.flags);
  if (missing.length === 0) return undefined;
  return [execPath, ...execArgv, ...missing, ...argv.slice(1)];
}

/**
 * Replaces this process (same pid, environment and stdio) by one with the missing flags. Returns
 * only when nothing was replaced: nothing is missing, or this platform has no `process.execve`
 * (Windows), in which case Settle runs with V8's defaults.
 */
export function ensureV8Flags(): void {
  const args = reexecArgs(process.execPath, process.execArgv, process.argv, process.env.NODE_OPTIONS);
  if (!args || typeof process.execve !== 'function') return;
  process.execve(process.execPath, args, process.env);
}
