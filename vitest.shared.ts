import { fileURLToPath } from 'node:url';

const workspaces = [
  'domain',
  'proto',
  'platform',
  'command-side',
  'query-side',
  'projections',
  'reactors',
  'payments',
  'cli',
  'features',
  'bench',
];
const root = fileURLToPath(new URL('.', import.meta.url));

/** Tests run against the TypeScript sources of every workspace, not their build output. */
export const workspaceAliases = workspaces.map((w) => ({
  find: new RegExp(`^@settle/${w}$`),
  replacement: `${root}${w}/src/index.ts`,
}));
