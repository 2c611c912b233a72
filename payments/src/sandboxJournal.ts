import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SandboxEvent } from './sandboxCallbacks.js';

export interface JournalAnswer {
  key: string;
  fingerprint: string;
  requestId: string;
  status: number;
  body: Record<string, unknown>;
}

type Line = ({ k: 'answer'; callback?: SandboxEvent } & JournalAnswer) | { k: 'settled'; id: string };

/**
 * The sandbox's memory on disk, like a real gateway's: every decision and every callback it
 * owes, appended synchronously before it is acted on. A restarted sandbox (even after
 * `kill -9`) answers repeated idempotency keys as before and resends the callbacks it still owes.
 * Without a file it keeps nothing.
 */
export class SandboxJournal {
  readonly answers: JournalAnswer[] = [];
  readonly owed = new Map<string, SandboxEvent>();

  constructor(private readonly file?: string) {
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    if (!existsSync(file)) return;
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      if (!raw) continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue; // a torn last line from a crash mid-write: that decision was never acted on
      }
      if (line.k === 'answer') {
        const { k: _k, callback, ...answer } = line;
        this.answers.push(answer);
        if (callback) this.owed.set(callback.id, callback);
      } else this.owed.delete(line.id);
    }
  }

  recordAnswer(answer: JournalAnswer, callback?: SandboxEvent): void {
    this.write({ k: 'answer', ...answer, ...(callback ? { callback } : {}) });
  }

  recordSettled(id: string): void {
    this.write({ k: 'settled', id });
  }

  private write(line: Line): void {
    if (this.file) appendFileSync(this.file, `${JSON.stringify(line)}\n`);
  }
}
