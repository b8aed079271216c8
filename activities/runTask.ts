/**
 * Runs one task on one host, as the activities do: a health probe from the worker, or a command through the host's
 * transport. Secret references are resolved here, right before use, and every value resolved is redacted from what
 * goes back (output tail, error message) to Temporal's history, the status and the logs.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Probe, Transport } from '../core/plan';
import { urlQuote } from '../core/secrets';
import { SecretScope } from '../transport/secrets';
import { ConnectionError, type HostRunner, OUTPUT_TAIL_CHARS, PermanentError, type CommandOptions, type CommandResult } from '../transport/transport';
import { runProbe } from './probes';

export interface RunnableTask {
  host: string;
  command: string;
  transport: Transport;
  probe?: Probe;
}

async function fillProbe(probe: Probe, secrets: SecretScope): Promise<Probe> {
  if (probe.kind === 'tcp') return { ...probe, address: await secrets.fill(probe.address) };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(probe.headers)) headers[name] = await secrets.fill(value);
  const json = probe.json && Object.fromEntries(await Promise.all(Object.entries(probe.json).map(async ([path, value]) => [path, typeof value === 'string' ? await secrets.fill(value) : value] as const)));
  return { ...probe, url: await secrets.fill(probe.url, urlQuote), headers, ...(json ? { json } : {}) };
}

/**
 * Throws ApplicationFailure.nonRetryable for what no retry can fix (a rejected host key, a missing secret),
 * ConnectionError when the host could not be reached; otherwise the command's or probe's result.
 */
export async function runTask(runner: HostRunner, task: RunnableTask, options: CommandOptions): Promise<CommandResult> {
  const secrets = new SecretScope();
  try {
    if (task.probe) {
      const result = await runProbe(await fillProbe(task.probe, secrets), { ...options, redact: (text) => secrets.redact(text) });
      return { ...result, outputTail: secrets.redact(result.outputTail) };
    }
    const command = await secrets.fillCommand(task.command);
    let streamed = 0;
    // The journal keeps a command's raw output on the worker's disk: a command that used secrets is journaled only
    // where the caller does without its output there (journalOutput: false, database tasks), else not at all (a
    // retry after a crash relies on the heartbeat for it).
    const { journalFile, journalOutput, ...runOptions } = options;
    const journaled = journalFile && (secrets.empty || journalOutput === false);
    const result = await runner.run({ id: task.host, transport: task.transport }, command, {
      ...runOptions,
      ...(journaled ? { journalFile, ...(journalOutput === false ? { journalOutput } : {}) } : {}),
      withoutEnv: secrets.envNames,
      // Streamed only where something reads it: each chunk is a message from the spawner.
      ...(options.onOutput || !secrets.empty
        ? {
            onOutput: (chunk: string) => {
              streamed += chunk.length;
              options.onOutput?.(secrets.redact(chunk));
            },
          }
        : {}),
    });
    if (secrets.empty) return result;
    let tail = result.outputTail;
    // A tail cut to size may begin with the end of a value (in any of the forms redaction hides), which no longer
    // matches it: drop that stretch.
    if (streamed > OUTPUT_TAIL_CHARS || tail.length >= OUTPUT_TAIL_CHARS) tail = `[cutover] …${tail.slice(secrets.longest)}`;
    return { ...result, outputTail: secrets.redact(tail) };
  } catch (error) {
    const message = secrets.redact((error as Error).message ?? String(error));
    if (error instanceof PermanentError) throw ApplicationFailure.nonRetryable(message, error.name);
    if (error instanceof ApplicationFailure) throw error;
    if (error instanceof ConnectionError) throw new ConnectionError(message);
    throw new Error(message);
  }
}
