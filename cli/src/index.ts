export * from './start.js';
export * from './wiring.js';
export * from './main.js';
