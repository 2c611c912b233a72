export * from './envelope.js';
export * from './errors.js';
export * from './currencies.js';
export * from './versions.js';
export * from './paymentRequest/index.js';
export * from './preferences/index.js';
export * from './testing.js';
export * from './clients/index.js';
