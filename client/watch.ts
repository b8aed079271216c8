/**
 * `cutover watch RUN`: the run's status, redrawn in place on a terminal (log-update) or printed as plain lines, one
 * per change, where output is not a terminal; until the run ends or waits for a person. The view itself is pure
 * (core/watch.ts); this module only polls and draws.
 */
import { styleText } from 'node:util';
import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { createLogUpdate } from 'log-update';
import { UserError } from '../core/errors';
import type { RunResult, RunStatus } from '../core/status';
import { changedFacts, watchFacts, watchFrame, watchModel } from '../core/watch';
import { getStatus, queryStatus, runId } from './runs';

export interface WatchEnd {
  /** `waiting`: a gate or a failure waits for a person; `ended`: the run is closed. */
  kind: 'waiting' | 'ended';
  status?: RunStatus;
  /** For an ended run: how it ended, in words, and whether it completed. */
  summary: string;
  completed: boolean;
}

export interface WatchOptions {
  out?: NodeJS.WriteStream;
  intervalMs?: number;
}

const clock = () => new Date().toISOString().slice(11, 19);

type Style = Parameters<typeof styleText>[0];
const CELLS: [RegExp, Style][] = [
  [/█+/g, 'green'],
  [/✖+/g, 'red'],
  [/▒+/g, 'yellow'],
  [/░+/g, 'gray'],
];

/**
 * Colours for a terminal: bars' parts, failures red, what waits for a person yellow. styleText leaves the text
 * plain where the stream has no colours or NO_COLOR is set.
 */
function colour(line: string, out: NodeJS.WriteStream): string {
  const style = (format: Style, text: string) => styleText(format, text, { stream: out });
  if (/^ {2}✖ /.test(line) || line.startsWith('Failed hosts:') || line.startsWith('Failure:')) return style('red', line);
  if (line.startsWith('Waiting for')) return style(['yellow', 'bold'], line);
  if (/^ {2}(approve with|choose|    or): /.test(line)) return line.replace(/cutover .*/, (command) => style('cyan', command));
  return CELLS.reduce((text, [cells, format]) => text.replace(cells, (run) => style(format, run)), line);
}

/** Each line coloured; a wrapped line's continuations (indented 4 more) take the colour of the line they continue. */
function colourFrame(lines: string[], out: NodeJS.WriteStream): string[] {
  let last = '';
  return lines.map((line) => {
    const continues = /^ {4}/.test(line) && (last.startsWith('Waiting for') || /^ {2}✖ /.test(last));
    if (!continues) last = line;
    return continues ? colour(last, out).replace(last, line) : colour(line, out);
  });
}

/** Draws frames: redrawn in place on a terminal, or the changed facts as timestamped lines elsewhere. */
function drawer(out: NodeJS.WriteStream, workflowId: string) {
  if (out.isTTY) {
    const draw = createLogUpdate(out);
    return {
      show: (status: RunStatus) => draw(colourFrame(watchFrame(watchModel(workflowId, status), clock(), out.columns || 120), out).join('\n')),
      end: (line: string) => {
        draw.done();
        out.write(`${line}\n`);
      },
    };
  }
  let facts = new Map<string, string>();
  return {
    show: (status: RunStatus) => {
      const next = watchFacts(watchModel(workflowId, status));
      for (const line of changedFacts(facts, next)) out.write(`[${clock()}] ${line}\n`);
      facts = next;
    },
    end: (line: string) => out.write(`[${clock()}] ${line}\n`),
  };
}

/** How a closed run ended, from its result (or its failure). */
async function ending(client: Client, workflowId: string): Promise<Pick<WatchEnd, 'summary' | 'completed'>> {
  try {
    const result = (await client.workflow.getHandle(workflowId).result()) as RunResult;
    const reason = result.reason ? `: ${result.reason}` : '';
    return { summary: `run ${result.outcome}${reason}`, completed: result.outcome === 'completed' };
  } catch (error) {
    const cause = error instanceof WorkflowFailedError ? (error.cause?.message ?? error.message) : (error as Error).message;
    return { summary: `run ended without completing: ${cause}`, completed: false };
  }
}

async function isOpen(client: Client, workflowId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) throw new UserError(`No run ${workflowId} in namespace ${client.options.namespace}.`);
    throw error;
  }
}

/** Follows a run until it ends or waits for a person. */
export async function watchRun(client: Client, run: string, options: WatchOptions = {}): Promise<WatchEnd> {
  const workflowId = runId(run);
  const out = options.out ?? process.stdout;
  const view = drawer(out, workflowId);
  // The first query says plainly when no worker can answer; later ones may miss a beat while a worker restarts.
  // A closed run still answers the query while a worker polls its task queue: its last frame, before how it ended.
  let status: RunStatus | undefined = (await isOpen(client, workflowId)) ? await getStatus(client, workflowId) : await queryStatus(client, workflowId).catch(() => undefined);
  for (;;) {
    if (status) view.show(status);
    if (status?.pendingGate || status?.awaitingOperator) {
      const what = status.pendingGate ? `gate ${status.pendingGate.gate}` : 'an operator';
      view.end(`${workflowId} waits for ${what}.`);
      return { kind: 'waiting', status, summary: `waiting for ${what}`, completed: false };
    }
    if (!(await isOpen(client, workflowId))) {
      const end = await ending(client, workflowId);
      view.end(`${workflowId}: ${end.summary}`);
      return { kind: 'ended', ...(status ? { status } : {}), ...end };
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 500));
    status = (await queryStatus(client, workflowId).catch(() => undefined)) ?? status;
  }
}

/** The exit code of `cutover watch`: 0 completed, 2 waiting for a person, 1 ended otherwise. */
export function watchExitCode(end: WatchEnd): number {
  if (end.kind === 'waiting') return 2;
  return end.completed ? 0 : 1;
}
