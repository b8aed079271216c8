/** Small text helpers shared by the activities, the workflow and the terminal. */

/** The last non-empty line of a command's output, trimmed: a version, a checksum, or what went wrong. */
export function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? '';
}

/** One `{{...}}` in a text: where it starts and ends, and what stands between its opening and its closing `}}`. */
export interface TemplateSpan {
  start: number;
  end: number;
  body: string;
}

/**
 * The templates of `text` as the regex /HEAD([^}]*)\}\}/g finds them, where `head` is a sticky regex for HEAD, which
 * starts with `{{` and matches no `}`: each runs from its head to the first `}` after it, when a second `}` follows. A scan rather than
 * that regex, which on a `{{` never closed reads on to the end of the text from every `{{` again: quadratic on
 * adversarial input such as '{{' repeated. The scan reads each character a bounded number of times: a failed
 * template's heads up to its first `}` all fail the same way, so the next one is looked for after it.
 */
export function templateSpans(text: string, head: RegExp): TemplateSpan[] {
  const spans: TemplateSpan[] = [];
  let open = text.indexOf('{{');
  while (open >= 0) {
    head.lastIndex = open;
    if (!head.test(text)) {
      open = text.indexOf('{{', open + 1);
      continue;
    }
    const close = text.indexOf('}', head.lastIndex);
    if (close < 0) break;
    const closed = text[close + 1] === '}';
    if (closed) spans.push({ start: open, end: close + 2, body: text.slice(head.lastIndex, close) });
    open = text.indexOf('{{', closed ? close + 2 : close + 1);
  }
  return spans;
}
