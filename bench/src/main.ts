/**
 * `npm run bench [-- --quick] [-- --only B1,B4] [-- --profile]`: runs the workloads of issue 6,
 * each beside its limit measured in the same run, and writes bench/results/<timestamp>.{json,md}
 * (and latest.md). Exit code 1 only when a workload crashed; a missed target is a finding.
 */
import { fileURLToPath } from 'node:url';
import { runB1 } from './b1Appends.js';
import { runB2 } from './b2Http.js';
import { runB3 } from './b3EndToEnd.js';
import { runB4 } from './b4Rebuild.js';
import { runB5 } from './b5Forwarder.js';
import { stopAllChildren } from './children.js';
import { createContext, type Ctx } from './context.js';
import {
  loadAverage,
  machineFacts,
  terminalTable,
  writeResults,
  type Row,
  type RunResult,
  type WorkloadId,
} from './report.js';
import { serverVersions } from './versions.js';
import { summariseProfiles } from './profiles.js';

// kafkajs 2.2 schedules timers with negative delays on Node 24 (harmless, and noisy in the output).
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const name =
    typeof warning === 'string'
      ? typeof rest[0] === 'string'
        ? rest[0]
        : (rest[0] as { type?: string } | undefined)?.type
      : warning.name;
  if (name === 'TimeoutNegativeWarning') return;
  (emitWarning as (...a: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const WORKLOADS: { id: WorkloadId; title: string; run: (ctx: Ctx) => Promise<Row[]> }[] = [
  { id: 'B1', title: 'appends', run: runB1 },
  // B6 is measured during B2 (the all-in-one process's RSS under load).
  { id: 'B2', title: 'POST /v1/requests under load (+ B6 peak RSS)', run: runB2 },
  { id: 'B4', title: 'projection rebuild', run: runB4 },
  { id: 'B5', title: 'Kafka forwarder', run: runB5 },
  // Last: its Kafka + MongoDB part loads the shared FerretDB hardest (it may stall for a while).
  { id: 'B3', title: 'end to end, open model', run: runB3 },
];

/** --quick ends within 3 minutes: this much for the workloads, the rest for start-up and reports. */
const QUICK_BUDGET_S = 165;

function parseArgs(argv: string[]) {
  const quick = argv.includes('--quick');
  const profile = argv.includes('--profile');
  const onlyIndex = argv.indexOf('--only');
  const only =
    onlyIndex >= 0 ? new Set((argv[onlyIndex + 1] ?? '').toUpperCase().split(',').filter(Boolean)) : undefined;
  return { quick, profile, only };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
  const ctx = createContext({ quick: args.quick, ...(args.profile ? { profileDir: `${resultsDir}profiles` } : {}) });
  ctx.log(`${args.quick ? 'quick' : 'full'} run ${ctx.runId}: asking the servers what they are`);
  const run: RunResult = {
    startedAt: new Date().toISOString(),
    mode: args.quick ? 'quick' : 'full',
    machine: machineFacts(await serverVersions(ctx)),
    rows: [],
    crashes: [],
  };
  ctx.log(
    `${run.mode} run ${ctx.runId} on ${run.machine.cores} × ${run.machine.cpus}, load ${run.machine.loadAverageAtStart.join(' ')}`,
  );
  const t0 = Date.now();
  // --quick is CI's smoke run: it must end within 3 minutes whatever the machine's load, and
  // fail only when the harness breaks. A workload the time budget cuts is skipped, not crashed.
  const quickDeadline = t0 + QUICK_BUDGET_S * 1000;
  for (const w of WORKLOADS) {
    if (args.only && !args.only.has(w.id) && !(w.id === 'B2' && args.only.has('B6'))) continue;
    const started = Date.now();
    const remainingS = args.quick ? Math.floor((quickDeadline - started) / 1000) : Infinity;
    if (remainingS < 15) {
      const reason = `not run: the --quick time budget (${QUICK_BUDGET_S} s) was spent (load average ${loadAverage()[0]})`;
      ctx.log(`${w.id} ${reason}`);
      run.rows.push({ id: w.id, workload: w.title, skipped: reason });
      continue;
    }
    // A workload stuck on a stalled server must not hold the whole run.
    const budgetS = Math.min(args.quick ? 150 : 600, remainingS);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      const rows = await Promise.race([
        w.run(ctx),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => {
              timedOut = true;
              reject(new Error(`did not finish within ${budgetS} s`));
            }, budgetS * 1000)),
        ),
      ]).finally(() => clearTimeout(timer));
      run.rows.push(...rows);
    } catch (error) {
      const message = (error as Error).stack ?? String(error);
      if (timedOut && args.quick) {
        // Timings are not judged in --quick: a busy machine is not a broken harness.
        const reason = `cut: ${(error as Error).message} (--quick budget; load average ${loadAverage()[0]})`;
        ctx.log(`${w.id} ${reason}`);
        run.rows.push({ id: w.id, workload: w.title, skipped: reason });
        await stopAllChildren();
      } else {
        ctx.log(`${w.id} crashed: ${message}`);
        run.crashes.push({ workload: `${w.id} ${w.title}`, error: (error as Error).message });
        run.rows.push({ id: w.id, workload: w.title, skipped: `crashed: ${(error as Error).message}` });
      }
    }
    ctx.log(`${w.id} done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  }
  await stopAllChildren();
  const order: WorkloadId[] = ['B1', 'B2', 'B6', 'B3', 'B4', 'B5'];
  run.rows.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
  if (ctx.profileDir) await summariseProfiles(ctx);
  run.finishedAt = new Date().toISOString();
  run.machine.loadAverageAtEnd = loadAverage();
  const files = await writeResults(resultsDir, run, !args.only && !args.quick);
  console.log(`\n${terminalTable(run)}\n`);
  console.log(
    `took ${((Date.now() - t0) / 1000).toFixed(0)} s; wrote ${[files.json, files.md, files.latest].filter(Boolean).join(', ')}`,
  );
  return run.crashes.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
