export { queryPlugin, buildQueryApp, MIN_POSITION_HEADER } from './plugin.js';
export type { QueryDeps, QueryContext } from './context.js';
export { schema } from './schema.js';
export * from './errors.js';
