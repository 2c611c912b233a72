import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { workspaceAliases } from './vitest.shared.js';

/** Unit and component specs: embedded parts only, no servers needed. */
export default defineConfig({
  resolve: { alias: workspaceAliases },
  test: {
    include: ['*/src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '*/src/**/*.int.test.ts'],
    // Hang guards, not speed assertions: CI shares a 2-core machine with other work.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Vitest's default (cores - 1) is a single worker on 2 cores, idle while a file waits on timers
    // and I/O: two workers ran the unit layer in 2 min 25 s instead of 4 min 34 s there (load 2-5).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    // PGlite's initdb runs once per run; every new embedded database starts from its dump.
    globalSetup: ['./scripts/vitest/pglite.global.ts'],
    setupFiles: ['./scripts/vitest/pglite.setup.ts'],
  },
});
