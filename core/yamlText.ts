/**
 * Reading YAML (and JSON, which YAML 1.2 contains) that somebody else wrote, safely: plans, and the worker's trust
 * file. Pure: the text in, plain data or a one-paragraph UserError naming the file out, in linear time.
 */
import { type Document, LineCounter, type YAMLError, isScalar, parseDocument, visit } from 'yaml';
import { UserError } from './errors';

/**
 * Aliases (`*name`) a plan may use, and how many copies of one anchor's content they may make in all (the `yaml`
 * package's maxAliasCount, which counts an anchor's own aliases too). A plan reuses a few definitions this way, a
 * retry policy or a role's steps; nested aliases multiply ("billion laughs"), and the `yaml` package resolves each
 * alias by walking the document, so even many plain ones cost seconds (2,000 took 6 s). Both are checked before
 * the document becomes data.
 */
const MAX_ALIASES = 100;
const MAX_ALIAS_COPIES = 100;

function aliasesIn(document: Document): number {
  let count = 0;
  visit(document, {
    Alias: () => {
      count += 1;
    },
  });
  return count;
}

function aliasBombMessage(file: string): string {
  return `${file} is refused: its YAML aliases (*name) would copy an anchor's content more than ${MAX_ALIAS_COPIES} times, as files built to exhaust memory do; write the repeated parts out instead`;
}

/** The document as plain data; the `yaml` package throws (a ReferenceError) on an alias bomb or an unresolved alias. */
function toData(document: Document, file: string): unknown {
  try {
    return document.toJS({ maxAliasCount: MAX_ALIAS_COPIES });
  } catch (error) {
    const message = (error as Error).message;
    throw new UserError(/excessive alias count/i.test(message) ? aliasBombMessage(file) : `${file} is not valid YAML or JSON: ${message}`);
  }
}

/** A problem the parser or duplicateKeys found: where it starts, and the first line of its message. */
interface Problem {
  offset: number;
  text: string;
}

function parserProblem(error: YAMLError): Problem {
  return { offset: error.pos[0], text: error.message.split('\n')[0] ?? '' };
}

/**
 * Keys that repeat in a map, as the `yaml` package's uniqueKeys option finds them (scalar keys of equal value) and
 * words them. Found here with a set per map, because that option compares each key with every earlier one: parsing
 * one map of 40,000 keys took 14 s.
 */
function duplicateKeys(document: Document, lines: LineCounter): Problem[] {
  const problems: Problem[] = [];
  visit(document, {
    Map: (_key, map) => {
      const seen = new Set<unknown>();
      for (const { key } of map.items) {
        if (!isScalar(key)) continue;
        if (seen.has(key.value)) {
          const offset = key.range?.[0] ?? 0;
          const { line, col } = lines.linePos(offset);
          problems.push({ offset, text: `Map keys must be unique at line ${line}, column ${col}:` });
        }
        seen.add(key.value);
      }
    },
  });
  return problems;
}

/** Pure: a YAML or JSON file's text as data, or a UserError naming the file; `what` names the kind of file in it. */
export function parseYamlText(text: string, file: string, what = 'a plan'): unknown {
  // YAML 1.2 is a superset of JSON, so one parser serves both and reports line and column for either.
  const lines = new LineCounter();
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: false, lineCounter: lines });
  const problems = [...document.errors.map(parserProblem), ...duplicateKeys(document, lines)].sort((a, b) => a.offset - b.offset);
  if (problems.length > 0) throw new UserError(`${file} is not valid YAML or JSON: ${problems.map((problem) => problem.text).join('; ')}`);
  const aliases = aliasesIn(document);
  if (aliases > MAX_ALIASES) {
    throw new UserError(`${file} is refused: it uses ${aliases} YAML aliases (*name), and ${what} may use at most ${MAX_ALIASES}; write the repeated parts out instead`);
  }
  return toData(document, file);
}
