export interface CommandRequest {
  command: string;
  host: string;
  /** Added to the environment the command inherits (commandEnvironment). */
  env?: Record<string, string>;
  /** Variables of the runner's environment the command must not see, besides those always left out. */
  withoutEnv?: string[];
  timeoutMs: number;
  /** Where to journal the command's start and success (see activities/journal.ts). */
  journalFile?: string;
  /** What the journal files the command under (default: the host). */
  journalKey?: string;
  /** false: journal the command's end without its output (it may hold a secret). */
  journalOutput?: boolean;
}

export interface CommandResult {
  exitCode: number;
  outputTail: string;
  timedOut: boolean;
}

export function runCommand(request: CommandRequest, onOutput?: (chunk: string) => void): { done: Promise<CommandResult>; kill(): void };
export function commandEnvironment(base: NodeJS.ProcessEnv, withoutNames?: string[]): Record<string, string>;
export function appendTail(tail: string, chunk: string): string;
export const OUTPUT_TAIL_CHARS: number;
