import { defineConfig } from 'vitest/config';
import { workspaceAliases } from './vitest.shared.js';

/** Integration specs: real PostgreSQL, Kafka, MongoDB wire (FerretDB) and Redis from `infra/local/services up`. */
export default defineConfig({
  resolve: { alias: workspaceAliases },
  test: {
    include: ['*/src/**/*.int.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    setupFiles: ['./scripts/vitest/warnings.setup.ts'],
  },
});
