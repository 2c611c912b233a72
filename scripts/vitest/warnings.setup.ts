/**
 * kafkajs 2.2.4 (its last release) arms a timer for `throttledUntil - Date.now()` with
 * `throttledUntil` at its initial -1 after every response (RequestQueue.scheduleCheckPendingRequests),
 * and Node 24 reports each as `TimeoutNegativeWarning: -1795… is a negative number` (tulios/kafkajs#1751):
 * harmless (Node uses 1 ms and the check finds nothing pending), but it buried the integration run's
 * output. `settle` drops the same warning (cli/bin/settle.js); any other warning, including a
 * negative timeout of ours, is still printed as Node would.
 */
const fromKafkajs = (warning: Error) =>
  warning.name === 'TimeoutNegativeWarning' && /[/\\]kafkajs[/\\]/.test(warning.stack ?? '');

const printers = process.listeners('warning');
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (fromKafkajs(warning)) return;
  for (const print of printers) print.call(process, warning);
});
