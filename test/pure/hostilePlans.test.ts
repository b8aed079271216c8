/**
 * Validation never throws and never hangs: names every object already has (`constructor`, `__proto__`), YAML alias
 * bombs, huge maps and overlong or adversarial text are refused with the path of the problem, quickly. The time
 * bounds are loose on purpose: they only catch a hang (what these inputs used to cost is in each test's name).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { planFromText } from '../../client/readPlan';
import { parseYamlText as parsePlanText } from '../../core/yamlText';
import { UserError } from '../../core/errors';
import { renderCommand, validatePlan } from '../../core/plan';
import { planRun } from '../../core/planner';
import { parseSecretRef, secretRefText, secretTemplates, substituteSecrets } from '../../core/secrets';
import { templateSpans } from '../../core/text';
import { type RawPlan, rawExample } from './fixtures';

/** Far above what any of these takes; a guard against hangs only. */
const FAST_MS = 1_000;

const PROTOTYPE_NAMES = ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf'] as const;
const ROLE = 'management-server';
const EXAMPLE = join(__dirname, '..', '..', 'examples', 'appv-lab.yaml');

/** Sets an own property, also for `__proto__`, which an assignment would take as the object's prototype instead. */
function own(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function elapsedMs(run: () => unknown): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

/** The example after `mutate`, as the CLI would read it from a file of either kind. */
const READERS: { kind: string; read: (raw: RawPlan) => unknown }[] = [
  { kind: 'JSON', read: (raw) => JSON.parse(JSON.stringify(raw)) },
  { kind: 'YAML', read: (raw) => parsePlanText(stringify(raw), 'plan.yaml') },
];

/** Each place a plan names something, with the path its refusal must name and what the message must say. */
const PLACES: { where: string; mutate: (raw: RawPlan, name: string) => void; path: (name: string) => (string | number)[]; says: (name: string) => string }[] = [
  {
    where: 'the target',
    mutate: (raw, name) => (raw.target = name),
    path: () => ['target'],
    says: (name) => (name === '__proto__' ? 'a version uses letters' : `no upgrade path leads to ${name}`),
  },
  { where: "a host's role", mutate: (raw, name) => (raw.hosts[1].roles = [name]), path: () => ['hosts', 1, 'roles', 0], says: reserved },
  { where: "a host's id", mutate: (raw, name) => (raw.hosts[1].id = name), path: () => ['hosts', 1, 'id'], says: reserved },
  { where: 'a gate', mutate: (raw, name) => own(raw.gates, name, {}), path: () => ['gates'], says: (name) => `Unrecognized key: "${name}"` },
  { where: 'an upgradePaths key', mutate: (raw, name) => own(raw.upgradePaths, name, ['4.1']), path: (name) => ['upgradePaths', name], says: reserved },
  { where: 'a roles key', mutate: (raw, name) => own(raw.roles, name, structuredClone(raw.roles[ROLE])), path: (name) => ['roles', name], says: reserved },
  {
    where: 'a probe header',
    mutate: (raw, name) => (raw.roles[ROLE].steps.verify = { probe: { kind: 'http', url: 'http://{{host}}/health', headers: headerNamed(name) }, timeout: '1m' }),
    path: (name) => ['roles', ROLE, 'steps', 'verify', 'probe', 'headers', name],
    says: reserved,
  },
];

function reserved(name: string): string {
  return `"${name}" is a reserved name; choose another`;
}

function headerNamed(name: string): Record<string, string> {
  const headers = {};
  own(headers, name, 'x');
  return headers;
}

describe.each(READERS)('names every object has, in a $kind plan', ({ read }) => {
  const cases = PLACES.flatMap((place) => PROTOTYPE_NAMES.map((name) => ({ ...place, name })));

  it.each(cases)('$where named $name is refused at its path', ({ mutate, path, says, name }) => {
    const raw = rawExample();
    mutate(raw, name);
    const result = validatePlan(read(raw));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((candidate) => JSON.stringify(candidate.path) === JSON.stringify(path(name)));
    expect(issue?.message, result.message).toContain(says(name));
  });

  it('refuses "prototype" as a role name too', () => {
    const raw = rawExample();
    raw.roles.prototype = structuredClone(raw.roles[ROLE]);
    const result = validatePlan(read(raw));
    if (result.ok) throw new Error('expected a refusal');
    expect(result.issues.map((issue) => [issue.path, issue.message])).toEqual([[['roles', 'prototype'], reserved('prototype')]]);
  });
});

describe('planning and rendering read own properties only', () => {
  it('leaves {{constructor}} and {{toString}} as they are', () => {
    const values = { host: 'h1', fleet: 'f', source: '1', target: '2', version: '2', backup: 'b', database: 'd', previousDatabase: 'd' };
    expect(renderCommand('run {{constructor}} {{ toString }} {{host}}', values)).toBe('run {{constructor}} {{ toString }} h1');
  });

  it('plans a valid plan whose names merely resemble reserved ones', () => {
    const raw = rawExample();
    raw.hosts[1].id = 'Constructor';
    raw.hosts[2].id = 'toString2';
    const result = validatePlan(raw);
    if (!result.ok) throw new Error(result.message);
    expect(planRun(result.plan, { backup: 'b' }).hostIds).toEqual(['appv-01', 'Constructor', 'toString2', 'appv-04']);
  });
});

describe('YAML built to exhaust the reader', () => {
  const billionLaughs = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (const level of 'bcdefghi') {
    const previous = String.fromCharCode(level.charCodeAt(0) - 1);
    billionLaughs.push(`${level}: &${level} [${Array(9).fill(`*${previous}`).join(', ')}]`);
  }

  it('refuses an alias bomb (billion laughs) fast, naming the file', () => {
    let thrown: unknown;
    const ms = elapsedMs(() => {
      try {
        parsePlanText(billionLaughs.join('\n'), 'bomb.yaml');
      } catch (error) {
        thrown = error;
      }
    });
    expect(thrown).toBeInstanceOf(UserError);
    expect((thrown as Error).message).toMatch(/^bomb\.yaml is refused: its YAML aliases .* more than 100 times/);
    expect((thrown as Error).message).not.toContain('\n');
    expect(ms).toBeLessThan(FAST_MS);
  });

  it('refuses thousands of plain aliases fast (2,000 took 6 s to resolve)', () => {
    const anchors = Array.from({ length: 2000 }, (_, i) => `a${i}: &a${i} x`);
    const text = [...anchors, `b: [${anchors.map((_, i) => `*a${i}`).join(', ')}]`].join('\n');
    let message = '';
    const ms = elapsedMs(() => {
      try {
        parsePlanText(text, 'many.yaml');
      } catch (error) {
        message = (error as Error).message;
      }
    });
    expect(message).toBe('many.yaml is refused: it uses 2000 YAML aliases (*name), and a plan may use at most 100; write the repeated parts out instead');
    expect(ms).toBeLessThan(FAST_MS);
  });

  it('still reads a plan that reuses a definition by alias', () => {
    const retry = 'retry: { maxAttempts: 3, initialInterval: 2s }';
    const text = readFileSync(EXAMPLE, 'utf8').replace(retry, `retry: &retry { maxAttempts: 3, initialInterval: 2s }`).replace(retry, 'retry: *retry');
    expect(text).toContain('*retry');
    const plan = planFromText(text, 'plan.yaml');
    expect(plan.roles['db-owner']?.steps.upgrade?.retry).toEqual(plan.roles[ROLE]?.steps.upgrade?.retry);
  });

  it('finds duplicate keys in one pass: a map of 20,000 keys (3.6 s before) is read fast', () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `k${i}: 1`).join('\n');
    expect(elapsedMs(() => parsePlanText(text, 'wide.yaml'))).toBeLessThan(FAST_MS);
    expect(() => parsePlanText('a: 1\nb: 2\na: 3\n', 'dup.yaml')).toThrow('dup.yaml is not valid YAML or JSON: Map keys must be unique at line 3, column 1:');
    expect(() => parsePlanText('{"a": 1, "b": {"c": 1, "c": 2}}', 'dup.json')).toThrow('Map keys must be unique at line 1, column 24:');
  });
});

describe('overlong and adversarial text', () => {
  const runPath = ['roles', ROLE, 'steps', 'version', 'run'];

  function refusedFast(mutate: (raw: RawPlan) => void): { path: PropertyKey[]; message: string }[] {
    const raw = rawExample();
    mutate(raw);
    let result: ReturnType<typeof validatePlan> | undefined;
    expect(elapsedMs(() => (result = validatePlan(raw)))).toBeLessThan(FAST_MS);
    if (!result || result.ok) throw new Error('expected a refusal');
    return result.issues.map(({ path, message }) => ({ path, message }));
  }

  it('refuses a 20,000-character command at its path, alone', () => {
    const issues = refusedFast((raw) => (raw.roles[ROLE].steps.version.run = `labhost {{host}} version ${'x'.repeat(20_000)}`));
    expect(issues).toEqual([{ path: runPath, message: 'too long: 20025 characters, at most 8192' }]);
  });

  it("refuses '{{' repeated 10,000 times at its path", () => {
    const issues = refusedFast((raw) => (raw.roles[ROLE].steps.version.run = '{{'.repeat(10_000)));
    expect(issues).toEqual([{ path: runPath, message: 'too long: 20000 characters, at most 8192' }]);
  });

  it('refuses huge ids, versions and instructions at their paths', () => {
    const issues = refusedFast((raw) => {
      raw.hosts[1].id = 'h'.repeat(20_000);
      raw.source = '4'.repeat(300);
      raw.gates.beforeOffline.instructions = 'Approve. '.repeat(1000);
    });
    expect(issues.map((issue) => issue.path)).toEqual([['source'], ['hosts', 1, 'id'], ['gates', 'beforeOffline', 'instructions']]);
    expect(issues.map((issue) => issue.message)).toEqual([
      'too long: 300 characters, at most 253',
      'too long: 20000 characters, at most 253',
      'too long: 9000 characters, at most 4096',
    ]);
  });

  it('checks adversarial templates just under the cap fast', () => {
    for (const text of ['{{'.repeat(4000), `{{${' '.repeat(8000)}`, '{{secret:'.repeat(900), `{{secret:env:A${' '.repeat(8000)}`]) {
      const raw = rawExample();
      raw.roles[ROLE].steps.version.run = text;
      expect(elapsedMs(() => validatePlan(raw))).toBeLessThan(FAST_MS);
    }
  });

  it('finds secret templates in linear time (the old regex took seconds on blanks after "{{secret:")', () => {
    const text = `{{secret:env:A${' '.repeat(200_000)}`;
    expect(elapsedMs(() => secretTemplates(text))).toBeLessThan(FAST_MS);
    expect(elapsedMs(() => substituteSecrets(`${text}{{secret:env:B }}`, new Map([['env:B', 'b']])))).toBeLessThan(FAST_MS);
    expect(elapsedMs(() => secretTemplates('{{secret:'.repeat(20_000)))).toBeLessThan(FAST_MS);
  });
});

describe('templateSpans finds what the regexes it replaces found', () => {
  /** A small deterministic generator, so a failure can be reproduced. */
  function randomTexts(count: number): string[] {
    const pieces = ['{', '}', '{{', '}}', ' ', 'a', 'host', 'secret:', 'env:X', 'file:/x', '\n'];
    let seed = 42;
    const next = () => (seed = (seed * 48_271) % 2_147_483_647);
    return Array.from({ length: count }, () => Array.from({ length: next() % 16 }, () => pieces[next() % pieces.length]).join(''));
  }

  it.each([
    { head: /\{\{/y, regex: /\{\{([^}]*)\}\}/g },
    { head: /\{\{\s*secret:/y, regex: /\{\{\s*secret:([^}]*)\}\}/g },
  ])('$regex', ({ head, regex }) => {
    for (const text of randomTexts(5000)) {
      const expected = [...text.matchAll(regex)].map((match) => ({ start: match.index, end: match.index + match[0].length, body: match[1] }));
      expect(templateSpans(text, head), JSON.stringify(text)).toEqual(expected);
    }
  });

  it('substitutes secrets exactly as the lazy regex did', () => {
    const old = (text: string, values: Map<string, string>) =>
      text.replace(/\{\{\s*secret:([^}]*?)\s*\}\}/g, (whole, raw: string) => {
        const parsed = parseSecretRef(raw);
        return (parsed.ok ? values.get(secretRefText(parsed.ref)) : undefined) ?? whole;
      });
    const values = new Map([['env:X', 'x!']]);
    for (const text of randomTexts(5000)) expect(substituteSecrets(text, values), JSON.stringify(text)).toBe(old(text, values));
  });
});

describe('runs from before the length caps', () => {
  it('keep the plan they started with: a long inline script is refused for new runs, not for them', () => {
    const raw = rawExample();
    raw.roles['management-server'].steps.upgrade.run = `powershell -Command "${'Write-Output step; '.repeat(600)}"`;
    const capped = validatePlan(raw);
    expect(capped.ok).toBe(false);
    expect(capped.ok ? '' : capped.message).toContain('too long');
    const uncapped = validatePlan(raw, { uncapped: true });
    expect(uncapped.ok && uncapped.plan.roles['management-server']?.steps.upgrade?.run).toBe(raw.roles['management-server'].steps.upgrade.run);
  });
});
