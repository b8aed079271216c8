/** `cutover report`'s options, parsed: each file's name says its kind. Pure. */
import { z } from 'zod';

const EXTENSIONS = { html: ['.html', '.htm'], md: ['.md', '.markdown'], svg: ['.svg'] } as const;

function outputFile(kind: keyof typeof EXTENSIONS) {
  const allowed: readonly string[] = EXTENSIONS[kind];
  return z
    .string()
    .min(1, 'a file name is needed')
    .refine((file) => allowed.some((extension) => file.toLowerCase().endsWith(extension)), `the ${kind} report's file name must end in ${allowed.join(' or ')}`);
}

// Each kind has its own extensions, so no file can be named for two reports.
export const ReportOptions = z.strictObject({ html: outputFile('html').optional(), md: outputFile('md').optional(), svg: outputFile('svg').optional() });
export type ReportOptions = z.infer<typeof ReportOptions>;

/** The options, or one paragraph naming each option that is wrong and why (z.prettifyError's lines, joined). */
export function parseReportOptions(raw: unknown): { ok: true; options: ReportOptions } | { ok: false; message: string } {
  const parsed = ReportOptions.safeParse(raw);
  if (parsed.success) return { ok: true, options: parsed.data };
  const message = z
    .prettifyError(parsed.error)
    .replace(/\s*→ at (\w+)/g, ' (--$1)')
    .replace(/✖ /g, '')
    .split('\n')
    .join('; ');
  return { ok: false, message: `cutover report refuses its options: ${message}` };
}
