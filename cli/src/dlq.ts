import { Command, Option } from 'commander';
import { clientsEnv, type ClientsCommandEnv } from './clients.js';
import { operatorGraphQL } from './operatorApi.js';
import { OperatorApiError } from './projections.js';

export interface ParkedRow {
  owner: string;
  streamId: string;
  eventId: string;
  eventType: string;
  position: string;
  error: string;
  attempts: number;
  parkedAt: string;
  pendingAction: string | null;
}

export interface DeadLetterRow {
  id: string;
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  group: string;
  attempts: number;
  error: string;
  /** SETTLE_ERR_… (SETTLE_ERR_BUS_CRASH_LOOP: the process died on it). */
  errorCode: string;
  failedAt: string;
  originalTopic: string;
  eventType: string | null;
}

export const DLQ_QUERY = `{
  parkedStreams { owner streamId eventId eventType position error attempts parkedAt pendingAction }
  deadLetters { id topic partition offset key group attempts error errorCode failedAt originalTopic eventType }
}`;

/** `<topic>/<partition>/<offset>` names a Kafka dead letter; anything else a parked stream. */
export const isDeadLetterId = (id: string): boolean => /^[^/\s]+\/\d+\/\d+$/.test(id);

export async function listDlq(
  env: ClientsCommandEnv = clientsEnv(),
): Promise<{ parked: ParkedRow[]; deadLetters: DeadLetterRow[] }> {
  const data = await operatorGraphQL<{ parkedStreams: ParkedRow[]; deadLetters: DeadLetterRow[] }>(DLQ_QUERY, {}, env);
  return { parked: data.parkedStreams, deadLetters: data.deadLetters };
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((cells) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

const oneLine = (s: string, max = 120): string => {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

export function formatDlq(list: { parked: ParkedRow[]; deadLetters: DeadLetterRow[] }): string {
  const out: string[] = [];
  out.push(`Parked streams: ${list.parked.length}`);
  if (list.parked.length > 0)
    out.push(
      ...table(
        ['OWNER', 'STREAM', 'EVENT', 'POSITION', 'ATTEMPTS', 'PARKED AT', 'ERROR'],
        list.parked.map((p) => [
          p.owner,
          p.streamId,
          p.eventType,
          p.position,
          String(p.attempts) + (p.pendingAction ? ` (${p.pendingAction} pending)` : ''),
          p.parkedAt,
          oneLine(p.error),
        ]),
      ),
    );
  out.push('', `Kafka dead letters: ${list.deadLetters.length}`);
  if (list.deadLetters.length > 0)
    out.push(
      ...table(
        ['ID (TOPIC/PARTITION/OFFSET)', 'KEY', 'GROUP', 'EVENT', 'ATTEMPTS', 'FAILED AT', 'ERROR'],
        list.deadLetters.map((d) => [
          d.id,
          d.key ?? '',
          d.group,
          d.eventType ?? '(unreadable)',
          String(d.attempts),
          d.failedAt,
          oneLine(d.errorCode ? `${d.errorCode}: ${d.error}` : d.error),
        ]),
      ),
    );
  return out.join('\n');
}

export type DlqAction = 'retry' | 'skip';

/**
 * Retries or skips a parked stream (`retryParked`/`skipParked`) or a Kafka dead letter
 * (`retryDeadLetter`/`skipDeadLetter`). Answers whether it went through; a retry that failed again
 * leaves the stream parked and answers false with the new error.
 */
export async function actOnDlq(
  action: DlqAction,
  id: string,
  env: ClientsCommandEnv = clientsEnv(),
): Promise<{ ok: boolean; message: string }> {
  if (isDeadLetterId(id)) {
    const field = action === 'retry' ? 'retryDeadLetter' : 'skipDeadLetter';
    await operatorGraphQL(`mutation($id: ID!) { ${field}(id: $id) }`, { id }, env);
    return {
      ok: true,
      message:
        action === 'retry'
          ? `dead letter ${id} re-driven to its original topic (for its group only)`
          : `dead letter ${id} skipped (acknowledged; it is listed no more)`,
    };
  }
  const field = action === 'retry' ? 'retryParked' : 'skipParked';
  const data = await operatorGraphQL<Record<string, boolean>>(
    `mutation($id: ID!) { ${field}(streamId: $id) }`,
    { id },
    env,
  );
  if (data[field]) return { ok: true, message: `${id}: ${action === 'retry' ? 'retried' : 'skipped'}; it flows again` };
  const still = (await listDlq(env)).parked.filter((p) => p.streamId === id);
  const why = still.map((p) => `${p.owner}: ${p.eventType} at ${p.position}: ${oneLine(p.error)}`).join('; ');
  return { ok: false, message: `${id}: failed again, still parked (${why || 'see settle dlq list'})` };
}

const fail = (what: string, error: unknown): void => {
  if (!(error instanceof OperatorApiError)) throw error;
  console.error(`settle dlq ${what}: ${error.message}`);
  process.exitCode = 1;
};

/** `settle dlq list|retry|skip`: parked streams and Kafka dead letters, through the operator API. */
export function dlqCommand(): Command {
  const command = new Command('dlq').description(
    'parked streams (projections, reactor groups) and Kafka <topic>.dlq messages of a running Settle, through the operator API (SETTLE_URL, SETTLE_CLIENT_ID, SETTLE_CLIENT_SECRET; development defaults: http://127.0.0.1:3000, demo-operator, demo-secret)',
  );
  command
    .command('list')
    .description(
      'parked streams with the failing event and error; Kafka dead letters with topic/partition/offset, key and error',
    )
    .addOption(new Option('--json', 'print JSON instead of tables'))
    .action(async (opts: { json?: boolean }) => {
      try {
        const list = await listDlq();
        console.log(opts.json ? JSON.stringify(list, null, 2) : formatDlq(list));
      } catch (error) {
        fail('list', error);
      }
    });
  for (const action of ['retry', 'skip'] as const)
    command
      .command(action)
      .argument('<id>', 'a parked stream id (request-<id>) or a dead letter <topic>/<partition>/<offset>')
      .description(
        action === 'retry'
          ? 'parked stream: re-apply its held events from the failed one (stays parked if it fails again); dead letter: re-drive it to its original topic'
          : 'parked stream: skip the failing event and apply the rest; dead letter: acknowledge it without handling',
      )
      .action(async (id: string) => {
        try {
          const { ok, message } = await actOnDlq(action, id.trim());
          (ok ? console.log : console.error)(message);
          if (!ok) process.exitCode = 1;
        } catch (error) {
          fail(action, error);
        }
      });
  return command;
}
