import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { dumpPristineCluster } from '../../platform/src/eventStore/pgliteClient.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pristinePgliteCluster: string;
  }
}

/** Runs PGlite's initdb once for the whole run; every worker starts its databases from the dump. */
export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), 'settle-pglite-'));
  const file = join(dir, 'pristine.tar');
  await writeFile(file, Buffer.from(await (await dumpPristineCluster()).arrayBuffer()));
  project.provide('pristinePgliteCluster', file);
  return () => rm(dir, { recursive: true, force: true });
}
