import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Ctx } from './context.js';
import { formatSummary, summarise } from './profileSummary.js';

/** Writes a `.txt` summary beside every CPU profile of this run and prints where the time went. */
export async function summariseProfiles(ctx: Ctx): Promise<void> {
  const dir = ctx.profileDir!;
  const files = (await readdir(dir).catch(() => [] as string[])).filter(
    (f) => f.endsWith('.cpuprofile') && f.includes(ctx.runId),
  );
  for (const file of files) {
    const text = formatSummary(summarise(JSON.parse(await readFile(join(dir, file), 'utf8')), 30));
    await writeFile(join(dir, file.replace(/\.cpuprofile$/, '.txt')), `${text}\n`);
    ctx.log(`profile ${file}:\n${text.split('\n').slice(0, 45).join('\n')}`);
  }
}
