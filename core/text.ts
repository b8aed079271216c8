/** Small text helpers shared by the activities, the workflow and the terminal. */

/** The last non-empty line of a command's output, trimmed: a version, a checksum, or what went wrong. */
export function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}
