import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { StoredEvent } from '@settle/domain';
import { SettleError } from '../errors.js';
import { checkArchivedRun, ERR_ARCHIVE_FILE_INVALID } from './archive.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Stream ids become file names: only these characters, so no id can climb out of the directory. */
const SAFE_STREAM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

export const ARCHIVE_FILE_SUFFIX = '.jsonl.gz';

export function archiveFilePath(dir: string, streamId: string): string {
  if (!SAFE_STREAM_ID.test(streamId))
    throw new SettleError(ERR_ARCHIVE_FILE_INVALID, `stream id ${JSON.stringify(streamId)} cannot name a file`, 422);
  return join(dir, `${streamId}${ARCHIVE_FILE_SUFFIX}`);
}

/** One stored event per line, every envelope field, in this order. */
const toLine = (e: StoredEvent): string =>
  JSON.stringify({
    id: e.id,
    type: e.type,
    version: e.version,
    streamId: e.streamId,
    streamPosition: e.streamPosition,
    globalPosition: e.globalPosition,
    occurredAt: e.occurredAt,
    data: e.data,
    metadata: e.metadata,
  });

function invalid(path: string, message: string, cause?: unknown): SettleError {
  return new SettleError(ERR_ARCHIVE_FILE_INVALID, `${path}: ${message}`, 422, { cause });
}

function parseLine(path: string, line: string, n: number): StoredEvent {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (error) {
    throw invalid(path, `line ${n} is not JSON`, error);
  }
  const e = v as Record<string, unknown>;
  const bad = (field: string) => invalid(path, `line ${n}: ${field} is missing or has the wrong type`);
  if (typeof e !== 'object' || e === null) throw bad('the event');
  if (typeof e.id !== 'string' || !/^[0-9a-f-]{36}$/i.test(e.id)) throw bad('id');
  for (const f of ['type', 'streamId', 'occurredAt'] as const) if (typeof e[f] !== 'string') throw bad(f);
  for (const f of ['version', 'streamPosition', 'globalPosition'] as const)
    if (!Number.isSafeInteger(e[f]) || (e[f] as number) < 0) throw bad(f);
  if (Number.isNaN(Date.parse(e.occurredAt as string))) throw bad('occurredAt');
  if (!('data' in e)) throw bad('data');
  if (typeof e.metadata !== 'object' || e.metadata === null) throw bad('metadata');
  return e as unknown as StoredEvent;
}

/**
 * Reads and checks an archive file. A file cut short (a crash mid-write, a partial copy) fails
 * gzip's length and CRC check, so it can never pass for a complete one.
 */
export async function readArchiveFile(path: string): Promise<StoredEvent[]> {
  let text: string;
  try {
    text = (await gunzipAsync(await readFile(path))).toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw invalid(path, 'no such file', error);
    throw invalid(path, `not a complete gzip file (${(error as Error).message})`, error);
  }
  const lines = text.split('\n').filter((l) => l !== '');
  const events = lines.map((line, i) => parseLine(path, line, i + 1));
  checkArchivedRun(events);
  return events;
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some filesystems refuse fsync on a directory; the rename itself is still atomic there.
    if ((error as NodeJS.ErrnoException).code !== 'EINVAL' && (error as NodeJS.ErrnoException).code !== 'EISDIR')
      throw error;
  } finally {
    await handle.close();
  }
}

/**
 * Writes a stream's events as gzipped JSON lines to `<dir>/<streamId>.jsonl.gz`: to a temporary
 * name first, fsynced, then renamed (atomic) and the directory fsynced; then reads the final file
 * back and checks it holds exactly these events. Only then may the stream be truncated. A crash
 * leaves either no file, a complete one, or a `*.tmp` that never looks complete.
 */
export async function writeArchiveFile(dir: string, events: StoredEvent[]): Promise<string> {
  checkArchivedRun(events);
  const path = archiveFilePath(dir, events[0]!.streamId);
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const body = await gzipAsync(Buffer.from(events.map((e) => `${toLine(e)}\n`).join(''), 'utf8'));
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await syncDir(dir);
  const back = await readArchiveFile(path);
  const same =
    back.length === events.length &&
    back.every((e, i) => {
      const o = events[i]!;
      return (
        e.id === o.id &&
        e.streamPosition === o.streamPosition &&
        e.globalPosition === o.globalPosition &&
        toLine(e) === toLine(o)
      );
    });
  if (!same) throw invalid(path, 'the file read back differs from the events written; the stream is left as it was');
  return path;
}
