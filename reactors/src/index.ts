export * from './dispatcher.js';
export * from './notifier.js';
export * from './scheduler.js';
export * from './context.js';
export * from './archiver.js';
