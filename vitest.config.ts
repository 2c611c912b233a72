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
    // PGlite's initdb runs once per run; every new embedded database starts from its dump.
    globalSetup: ['./scripts/vitest/pglite.global.ts'],
    setupFiles: ['./scripts/vitest/pglite.setup.ts'],
  },
});
