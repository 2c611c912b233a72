import { defineConfig } from 'vitest/config';
import { workspaceAliases } from './vitest.shared.js';

/** Unit and component specs: embedded parts only, no servers needed. */
export default defineConfig({
  resolve: { alias: workspaceAliases },
  test: {
    include: ['*/src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '*/src/**/*.int.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
