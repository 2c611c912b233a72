import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the `.proto` files. `src/` and `dist/` sit at the same depth under
 * the workspace, so one relative URL serves the sources (tests) and the build alike.
 */
export const PROTO_DIR: string = fileURLToPath(new URL('../proto', import.meta.url));
