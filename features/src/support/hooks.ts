import { After, AfterAll, Before, BeforeAll, setDefaultTimeout, Status } from '@cucumber/cucumber';
import { SettleProcess, START_TIMEOUT_MS } from './app.js';
import type { SettleWorld } from './world.js';

setDefaultTimeout(60_000);

/** One Settle process shared by every scenario that does not need its own (restarts, crashes). */
let shared: SettleProcess | undefined;

BeforeAll({ timeout: START_TIMEOUT_MS }, async function () {
  shared = await SettleProcess.start('shared');
});

AfterAll({ timeout: 30_000 }, async function () {
  if (!shared) return;
  const code = await shared.stop();
  try {
    if (code !== 0)
      throw new Error(`the shared Settle process exited with code ${code} after SIGINT:\n${shared.outputSinceMark()}`);
  } finally {
    await shared.dispose();
  }
});

Before(function (this: SettleWorld) {
  if (!shared) throw new Error('the shared Settle process did not start');
  shared.markScenarioStart();
  this.use(shared);
});

After({ timeout: 60_000 }, async function (this: SettleWorld, { result, pickle }) {
  await Promise.allSettled([...this.subscriptions.values()].map((s) => s.close()));
  if (result?.status === Status.FAILED) {
    const logs = [shared, ...this.dedicated]
      .filter((app): app is SettleProcess => app !== undefined)
      .map(
        (app) =>
          `----- Settle output (${app.name}) during "${pickle.name}" -----\n${app.outputSinceMark() || '(nothing)'}`,
      );
    console.error(`\n${logs.join('\n')}\n`);
  }
  const disposed = await Promise.allSettled(this.dedicated.map((app) => app.dispose()));
  const failure = disposed.find((d): d is PromiseRejectedResult => d.status === 'rejected');
  if (failure) throw failure.reason;
});
