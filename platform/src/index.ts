export * from './errors.js';
export * from './ids.js';
export * from './eventStore/port.js';
export * from './eventStore/sqlClient.js';
export * from './eventStore/sqlEventStore.js';
export * from './eventStore/pgliteClient.js';
export * from './eventStore/pgClient.js';
export * from './eventStore/subscription.js';
