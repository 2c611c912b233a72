#!/usr/bin/env node
// Before anything else: re-execute with the V8 flags Settle's memory relies on (WebAssembly on
// its baseline compiler, a bounded young generation; see src/v8Flags.ts). Same pid.
const { ensureV8Flags } = await import('../dist/v8Flags.js');
ensureV8Flags();

// kafkajs 2.2.4 schedules negative timeouts on Node 24 (tulios/kafkajs#1751): harmless, but noisy.
// Only kafkajs's are dropped: a negative timeout of ours is still reported.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning' && /[/\\]kafkajs[/\\]/.test(warning.stack ?? '')) return;
  console.warn(`${warning.name}: ${warning.message}`);
});

const { buildCli } = await import('../dist/main.js');
await buildCli().parseAsync(process.argv);
