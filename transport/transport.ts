import type { Transport as TransportSpec } from '../core/plan';

export interface CommandOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called with output chunks as they arrive, so long steps can heartbeat with progress. */
  onOutput?: (chunk: string) => void;
  /**
   * Where a transport that can (the local one, through its spawner) journals the command's start and success on this
   * machine, so a retry after the worker was killed knows what finished (activities/journal.ts).
   */
  journalFile?: string;
  /** What the journal files the command under (default: the host id): a database task's activity. */
  journalKey?: string;
  /** false: the journal keeps the command's start and end but not its output, which may hold a secret. */
  journalOutput?: boolean;
  /**
   * Variables of the worker's environment a command on this machine must not inherit (the local transport; an ssh
   * session has the server's environment): the env: secrets its step resolved and substituted.
   */
  withoutEnv?: string[];
}

export interface CommandResult {
  exitCode: number;
  /** The last part of stdout and stderr interleaved, capped in size. */
  outputTail: string;
  timedOut: boolean;
}

/**
 * The only thing that touches a host: runs a command on it, reached the way its `Transport` (the plan's description:
 * local, or ssh with an address and a login) says.
 */
export interface HostRunner {
  run(host: { id: string; transport: TransportSpec }, command: string, options: CommandOptions): Promise<CommandResult>;
  close(): Promise<void>;
}

/** Thrown when the host cannot be reached at all (as opposed to a command that ran and failed). */
export class ConnectionError extends Error {
  override readonly name: string = 'ConnectionError';
}

/**
 * A problem no retry can fix (a host key that is not the pinned one, a secret missing on the worker): the step
 * goes to the operator at once instead of using up its retries.
 */
export class PermanentError extends Error {
  override readonly name: string = 'PermanentError';
}

export { OUTPUT_TAIL_CHARS, appendTail } from './commandRunner.cjs';
