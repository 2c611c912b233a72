#!/usr/bin/env node
// Before anything else: re-execute with WebAssembly kept on its baseline compiler (PGlite's
// optimising tier-up needs ~600 MB of compiler memory; see src/wasmTier.ts). Same pid.
const { ensureWasmBaseline } = await import('../dist/wasmTier.js');
ensureWasmBaseline();

// kafkajs 2.2.4 schedules negative timeouts on Node 24 (tulios/kafkajs#1751): harmless, but noisy.
// Only kafkajs's are dropped: a negative timeout of ours is still reported.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning' && /[/\\]kafkajs[/\\]/.test(warning.stack ?? '')) return;
  console.warn(`${warning.name}: ${warning.message}`);
});

const { buildCli } = await import('../dist/main.js');
await buildCli().parseAsync(process.argv);
