import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const workspaces = ['domain', 'proto', 'platform', 'command-side', 'query-side', 'projections', 'reactors', 'payments', 'cli', 'features', 'bench'];
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of every workspace, not their build output.
    alias: workspaces.map((w) => ({ find: `@settle/${w}`, replacement: `${root}${w}/src/index.ts` })),
  },
  test: {
    include: ['*/src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', '*/src/**/*.int.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
