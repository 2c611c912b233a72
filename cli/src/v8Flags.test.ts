import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { reexecArgs, V8_FLAG_GROUPS } from './v8Flags.js';

const run = promisify(execFile);
const SETTLE_BIN = join(resolve(dirname(fileURLToPath(import.meta.url)), '../..'), 'cli/bin/settle.js');
const ALL = V8_FLAG_GROUPS.flatMap((g) => g.flags);

describe('the V8 flags settle runs with', () => {
  it('re-executes with every flag, keeping node options and arguments in order', () => {
    expect(
      reexecArgs('/bin/node', ['--cpu-prof'], ['/bin/node', '/app/settle.js', 'start', '--roles', 'query']),
    ).toEqual(['/bin/node', '--cpu-prof', ...ALL, '/app/settle.js', 'start', '--roles', 'query']);
    expect(ALL).toEqual(
      expect.arrayContaining([
        '--no-wasm-tier-up',
        '--no-wasm-dynamic-tiering',
        '--max-semi-space-size=8',
        '--initial-old-space-size=32',
        '--heap-growing-percent=50',
      ]),
    );
  });

  it('does not re-execute once the flags are there', () => {
    expect(reexecArgs('/bin/node', ALL, ['/bin/node', 'settle.js'])).toBeUndefined();
  });

  it("leaves out a group the operator decided, on the command line or in NODE_OPTIONS; the operator's flag wins", () => {
    const without = (...purposes: string[]) =>
      V8_FLAG_GROUPS.filter((g) => !purposes.some((p) => g.purpose.includes(p))).flatMap((g) => g.flags);
    for (const own of ['--wasm-tier-up', '--liftoff-only', '--no-liftoff', '--wasm_dynamic_tiering'])
      expect(reexecArgs('/bin/node', [own], ['/bin/node', 's.js'])).toEqual([
        '/bin/node',
        own,
        ...without('WebAssembly'),
        's.js',
      ]);
    expect(reexecArgs('/bin/node', ['--max-semi-space-size=32'], ['/bin/node', 's.js'])).toEqual([
      '/bin/node',
      '--max-semi-space-size=32',
      ...without('young'),
      's.js',
    ]);
    expect(reexecArgs('/bin/node', [], ['/bin/node', 's.js'], '--max_semi_space_size=64 --enable-source-maps')).toEqual(
      ['/bin/node', ...without('young'), 's.js'],
    );
    expect(reexecArgs('/bin/node', ['--max-heap-size=512'], ['/bin/node', 's.js'])).toEqual([
      '/bin/node',
      '--max-heap-size=512',
      ...without('young', 'initial'),
      's.js',
    ]);
    // A flag that merely starts the same way decides nothing.
    expect(reexecArgs('/bin/node', ['--wasm-tier-up-filter=3'], ['/bin/node', 's.js'])).toEqual([
      '/bin/node',
      '--wasm-tier-up-filter=3',
      ...ALL,
      's.js',
    ]);
  });

  it('the settle launcher runs its command in the same process, with the flags', async () => {
    // A preloaded module reports the process it runs in: once in the launcher as started, once after
    // the re-execution (node keeps --import across it).
    const report = `data:text/javascript,console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv }))`;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = run(process.execPath, ['--import', report, SETTLE_BIN, '--version'], { env });
    const { stdout } = await child;
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('0.1.0');
    const reports = lines.slice(0, -1).map((l) => JSON.parse(l) as { pid: number; execArgv: string[] });
    expect(reports).toHaveLength(2);
    expect(reports.map((r) => r.pid)).toEqual([child.child.pid, child.child.pid]);
    expect(reports[0]!.execArgv).toEqual(['--import', report]);
    expect(reports[1]!.execArgv).toEqual(['--import', report, ...ALL]);
  });
});
