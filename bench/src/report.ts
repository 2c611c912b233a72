import { cpus, loadavg, release, totalmem } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Figures } from './measure.js';
import { round } from './measure.js';

export type WorkloadId = 'B1' | 'B2' | 'B3' | 'B4' | 'B5' | 'B6';

/**
 * One line of the table. `ratio` is always Settle ÷ limit in the row's own terms (throughput:
 * higher is better; for latency rows it is stated in `ratioMeaning`). `met` is undefined when the
 * row has no target or the run does not judge timings (--quick).
 */
export interface Row {
  id: WorkloadId;
  workload: string;
  settle?: Figures;
  limitName?: string;
  limit?: Figures;
  ratio?: number;
  /** How the ratio prints: 42% (default) or 2.5×. */
  ratioFormat?: 'percent' | 'times';
  ratioMeaning?: string;
  target?: string;
  met?: boolean;
  skipped?: string;
  note?: string;
}

export interface Machine {
  cpus: string;
  cores: number;
  memoryGb: number;
  kernel: string;
  node: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  servers: Record<string, string>;
}

export interface RunResult {
  startedAt: string;
  finishedAt?: string;
  mode: 'full' | 'quick';
  machine: Machine;
  rows: Row[];
  crashes: { workload: string; error: string }[];
}

export function machineFacts(servers: Record<string, string>): Machine {
  const list = cpus();
  return {
    cpus: list[0]?.model ?? 'unknown',
    cores: list.length,
    memoryGb: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadAverage(),
    servers,
  };
}

export const loadAverage = (): number[] => loadavg().map((x) => round(x, 2));

const fmt = (x: number | undefined, digits = 0): string =>
  x === undefined || !Number.isFinite(x)
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** "12,345 events/s" or, for rows judged on latency, "p99 12.3 ms". */
function headline(f: Figures | undefined, latencyRow: boolean): string {
  if (!f) return '—';
  if (latencyRow)
    return `p99 ${f.censoredAtMs !== undefined && (f.p99 ?? 0) >= f.censoredAtMs ? '≥ ' : ''}${fmt(f.p99, 1)} ms`;
  if (f.unit === 'MB') return `${fmt(f.peakRssMb, 0)} MB`;
  return `${fmt(f.throughput, f.throughput !== undefined && f.throughput < 100 ? 1 : 0)} ${f.unit}`;
}

export const isLatencyRow = (row: Row): boolean => row.id === 'B3';

function metCell(row: Row, mode: RunResult['mode']): string {
  if (row.skipped) return 'skipped';
  if (!row.target) return '—';
  if (mode === 'quick') return 'not judged (--quick)';
  return row.met === undefined ? '—' : row.met ? 'yes' : '**no**';
}

const ratioText = (row: Row): string =>
  row.ratio === undefined
    ? '—'
    : row.ratioFormat === 'times'
      ? `${fmt(row.ratio, row.ratio < 10 ? 1 : 0)}×`
      : `${fmt(row.ratio * 100, 0)}%`;

const escape = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The Markdown table (workload, Settle figure, limit, ratio, target, met?) plus details. */
export function markdown(run: RunResult): string {
  const m = run.machine;
  const lines: string[] = [];
  lines.push(`# Settle benchmarks — ${run.mode} run, ${run.startedAt}`, '');
  lines.push(
    `Machine: ${m.cores} × ${m.cpus}, ${m.memoryGb} GB RAM, Linux ${m.kernel}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}` +
      (m.loadAverageAtEnd ? `, at end ${m.loadAverageAtEnd.join(' / ')}` : '') +
      ' (shared machine: absolute figures are noisy, ratios are measured side by side in the same run).',
  );
  const servers = Object.entries(m.servers).map(([k, v]) => `${k}: ${v}`);
  if (servers.length > 0) lines.push('', `Servers: ${servers.join('; ')}.`);
  lines.push(
    '',
    '| id | workload | Settle | limit (same run) | ratio | target | met? |',
    '|---|---|---|---|---|---|---|',
  );
  for (const row of run.rows) {
    const latency = isLatencyRow(row);
    if (row.skipped) {
      lines.push(
        `| ${row.id} | ${escape(row.workload)} | skipped: ${escape(row.skipped)} | — | — | ${escape(row.target ?? '—')} | skipped |`,
      );
      continue;
    }
    const limit = row.limit
      ? `${headline(row.limit, latency)}${row.limitName ? ` (${row.limitName})` : ''}`
      : (row.limitName ?? '—');
    const ratio = ratioText(row);
    lines.push(
      `| ${row.id} | ${escape(row.workload)} | ${headline(row.settle, latency)} | ${escape(limit)} | ${ratio}${row.ratioMeaning ? ` ${escape(row.ratioMeaning)}` : ''} | ${escape(row.target ?? '—')} | ${metCell(row, run.mode)} |`,
    );
  }
  lines.push(
    '',
    '## Details',
    '',
    '| id | workload | side | throughput | p50 / p95 / p99 ms (of) | CPU s (of) | peak RSS MB (of) | n / s |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const row of run.rows) {
    if (row.skipped) continue;
    for (const [side, f] of [
      ['Settle', row.settle],
      ['limit', row.limit],
    ] as const) {
      if (!f) continue;
      const cpu =
        f.cpuSeconds === undefined
          ? '—'
          : `${fmt(f.cpuSeconds, 2)}${f.cpuOf ? ` (${f.cpuOf})` : ''}${f.serverCpuSeconds !== undefined ? ` + server ${fmt(f.serverCpuSeconds, 2)}` : ''}`;
      const at = (x: number | undefined) =>
        `${f.censoredAtMs !== undefined && (x ?? 0) >= f.censoredAtMs ? '≥ ' : ''}${fmt(x, 2)}`;
      const lat =
        f.p50 === undefined
          ? '—'
          : `${at(f.p50)} / ${at(f.p95)} / ${at(f.p99)}${f.latencyOf ? ` (${f.latencyOf})` : ''}`;
      const rss = f.peakRssMb === undefined ? '—' : `${fmt(f.peakRssMb, 0)}${f.rssOf ? ` (${f.rssOf})` : ''}`;
      lines.push(
        `| ${row.id} | ${escape(row.workload)} | ${side} | ${f.throughput === undefined ? '—' : `${fmt(f.throughput, 0)} ${f.unit}`} | ${escape(lat)} | ${escape(cpu)} | ${escape(rss)} | ${fmt(f.count)} / ${fmt(f.seconds, 1)} |`,
      );
    }
  }
  const notes = run.rows.filter((r) => r.note);
  if (notes.length > 0) {
    lines.push('', '## Notes', '');
    for (const r of notes) lines.push(`- **${r.id} ${r.workload}**: ${r.note}`);
  }
  if (run.crashes.length > 0) {
    lines.push('', '## Crashed workloads', '');
    for (const c of run.crashes) lines.push(`- ${c.workload}: ${c.error}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A compact table for the terminal. */
export function terminalTable(run: RunResult): string {
  const header = ['id', 'workload', 'Settle', 'limit', 'ratio', 'target', 'met?'];
  const body = run.rows.map((row) => {
    const latency = isLatencyRow(row);
    if (row.skipped)
      return [row.id, row.workload, `skipped: ${row.skipped}`.slice(0, 70), '', '', row.target ?? '', 'skipped'];
    return [
      row.id,
      row.workload,
      headline(row.settle, latency),
      headline(row.limit, latency),
      ratioText(row),
      row.target ?? '—',
      metCell(row, run.mode).replace(/\*/g, ''),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Writes the run's JSON and Markdown; `latest.md` only for full runs of every workload (not --only, not --quick). */
export async function writeResults(
  dir: string,
  run: RunResult,
  complete = true,
): Promise<{ json: string; md: string; latest?: string }> {
  await mkdir(dir, { recursive: true });
  const stamp = run.startedAt.replace(/[:.]/g, '-');
  const json = join(dir, `${stamp}.json`);
  const md = join(dir, `${stamp}.md`);
  const latest = join(dir, 'latest.md');
  const text = markdown(run);
  await writeFile(json, `${JSON.stringify(run, null, 2)}\n`);
  await writeFile(md, text);
  if (!complete) return { json, md };
  await writeFile(latest, text);
  return { json, md, latest };
}
