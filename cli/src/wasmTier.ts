/**
 * V8 flags every `settle` process runs with: WebAssembly stays on Liftoff, V8's baseline
 * compiler, and is never recompiled by the optimising compiler (TurboFan/Turboshaft).
 *
 * Why: the embedded event store is PGlite, PostgreSQL compiled to WebAssembly. V8 tiers a hot
 * WebAssembly function up in the background, and one of PGlite's functions (index 2272, a
 * 105 kB body) needs ~600 MB of compiler memory for it (`--trace-wasm-compilation-times`:
 * "603850776 / 637873304 max/total bytes", 0.9 s). Every embedded process hit that within
 * seconds of opening its store: RSS 150 → ~780 MB, given back once the compile ended, but the
 * process's peak all the same. With these flags the peak is the steady state (~250 MB after
 * start-up), and on this machine Liftoff-only PGlite used no more CPU per request than tiered
 * PGlite did (the tier-up compiles themselves cost CPU); see bench/README.md, B6.
 *
 * V8 reads these flags only when it starts (setting them later with `v8.setFlagsFromString`
 * does not stop the tier-up), so the `settle` launcher re-executes itself with them — the same
 * process id, see {@link reexecArgs}.
 */
export const WASM_BASELINE_FLAGS = ['--no-wasm-tier-up', '--no-wasm-dynamic-tiering'] as const;

/** A V8 flag that already decides WebAssembly tiering: the operator chose, nothing is added. */
const TIERING_FLAG = /^--(no-)?(wasm-tier-up|wasm-dynamic-tiering|liftoff|liftoff-only)(=|$)/;

/**
 * The argument vector to re-execute this process with so that it runs with
 * {@link WASM_BASELINE_FLAGS}, or undefined when it already decides WebAssembly tiering (the
 * flags are there, or the operator passed a tiering flag of their own, e.g.
 * `node --wasm-tier-up cli/bin/settle.js start` for V8's default).
 */
export function reexecArgs(
  execPath: string,
  execArgv: readonly string[],
  argv: readonly string[],
): string[] | undefined {
  if (execArgv.some((a) => TIERING_FLAG.test(a))) return undefined;
  return [execPath, ...execArgv, ...WASM_BASELINE_FLAGS, ...argv.slice(1)];
}

/**
 * Replaces this process (same pid, same environment, same stdio) by one with
 * {@link WASM_BASELINE_FLAGS}, when it does not have them yet. Returns only when nothing was
 * replaced: the flags are already there, or this platform has no `process.execve` (Windows), in
 * which case Settle runs with V8's default tiering.
 */
export function ensureWasmBaseline(): void {
  const args = reexecArgs(process.execPath, process.execArgv, process.argv);
  if (!args || typeof process.execve !== 'function') return;
  process.execve(process.execPath, args, process.env);
}
