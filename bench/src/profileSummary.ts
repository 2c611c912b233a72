/**
 * Where the time goes in a V8 CPU profile (`node --cpu-prof`): the top functions by self time and
 * the same time summed by package. Usage: node bench/dist/profileSummary.js FILE.cpuprofile [N]
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** `node_modules/pg/lib/x.js` → `pg`; `/repo/platform/dist/…` → `@settle/platform`; else the kind of code. */
function packageOf(url: string): string {
  if (!url) return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node core';
  const ws = /\/(domain|platform|command-side|query-side|projections|reactors|payments|cli|proto|bench)\/dist\//.exec(
    url,
  );
  if (ws) return `@settle/${ws[1]}`;
  return url.replace(/^file:\/\//, '');
}

export interface ProfileSummary {
  totalMs: number;
  functions: { name: string; where: string; selfMs: number; share: number }[];
  packages: { name: string; selfMs: number; share: number }[];
}

export function summarise(profile: Profile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map<string, { name: string; where: string; selfUs: number }>();
  const pkgs = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const where = url ? `${url.replace(/^file:\/\/.*?\/(node_modules|[a-z-]+\/dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const f = fns.get(key) ?? { name, where, selfUs: 0 };
    f.selfUs += us;
    fns.set(key, f);
    const pkg = ['(idle)', '(program)', '(garbage collector)'].includes(name) ? name : packageOf(url);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us);
  }
  const share = (us: number) => Math.round((us / total) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    functions: [...fns.values()]
      .sort((a, b) => b.selfUs - a.selfUs)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: Math.round(f.selfUs / 1000), share: share(f.selfUs) })),
    packages: [...pkgs]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), share: share(us) })),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [`total sampled: ${s.totalMs} ms`, '', 'self time by package:'];
  for (const p of s.packages)
    lines.push(`  ${String(p.share).padStart(5)}%  ${String(p.selfMs).padStart(7)} ms  ${p.name}`);
  lines.push('', 'top functions by self time:');
  for (const f of s.functions)
    lines.push(`  ${String(f.share).padStart(5)}%  ${String(f.selfMs).padStart(7)} ms  ${f.name}  ${f.where}`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/dist/profileSummary.js FILE.cpuprofile [N]');
    process.exit(2);
  }
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  console.log(formatSummary(summarise(profile, Number(process.argv[3] ?? 25))));
}
