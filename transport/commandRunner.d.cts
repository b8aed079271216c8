export interface CommandRequest {
  command: string;
  host: string;
  /** Added to the runner's environment. */
  env?: Record<string, string>;
  timeoutMs: number;
  /** Where to journal the command's start and success (see activities/journal.ts). */
  journalFile?: string;
}

export interface CommandResult {
  exitCode: number;
  outputTail: string;
  timedOut: boolean;
}

export function runCommand(request: CommandRequest, onOutput?: (chunk: string) => void): { done: Promise<CommandResult>; kill(): void };
export function appendTail(tail: string, chunk: string): string;
export const OUTPUT_TAIL_CHARS: number;
