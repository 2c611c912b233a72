import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { reexecArgs, WASM_BASELINE_FLAGS } from './wasmTier.js';

const run = promisify(execFile);
const SETTLE_BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'cli/bin/settle.js');

describe('WebAssembly kept on its baseline compiler', () => {
  it('re-executes with the flags, keeping node options and arguments in order', () => {
    expect(
      reexecArgs('/bin/node', ['--cpu-prof'], ['/bin/node', '/app/settle.js', 'start', '--roles', 'query']),
    ).toEqual(['/bin/node', '--cpu-prof', ...WASM_BASELINE_FLAGS, '/app/settle.js', 'start', '--roles', 'query']);
  });

  it('does not re-execute once the flags are there, or when the operator chose a tiering flag', () => {
    expect(reexecArgs('/bin/node', [...WASM_BASELINE_FLAGS], ['/bin/node', 'settle.js'])).toBeUndefined();
    for (const own of ['--wasm-tier-up', '--liftoff-only', '--no-liftoff', '--wasm-dynamic-tiering'])
      expect(reexecArgs('/bin/node', [own], ['/bin/node', 'settle.js'])).toBeUndefined();
    // A flag that merely starts the same way is not a tiering flag.
    expect(reexecArgs('/bin/node', ['--wasm-tier-up-filter=3'], ['/bin/node', 'settle.js'])).toBeDefined();
  });

  it('the settle launcher runs its command in the same process, with the flags', async () => {
    // A preloaded module reports the process it runs in: once in the launcher as started, once after
    // the re-execution (node keeps --import across it).
    const report = `data:text/javascript,console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv }))`;
    const child = run(process.execPath, ['--import', report, SETTLE_BIN, '--version'], { env: { ...process.env } });
    const { stdout } = await child;
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('0.1.0');
    const reports = lines.slice(0, -1).map((l) => JSON.parse(l) as { pid: number; execArgv: string[] });
    expect(reports).toHaveLength(2);
    expect(reports[1]!.pid).toBe(child.child.pid);
    expect(reports[0]!.pid).toBe(child.child.pid);
    expect(reports[0]!.execArgv).not.toContain(WASM_BASELINE_FLAGS[0]);
    expect(reports[1]!.execArgv).toEqual(expect.arrayContaining([...WASM_BASELINE_FLAGS]));
  });
});
