/**
 * Parses every command of a plan written for Windows PowerShell 5.1 (the real-world templates, examples/*-windows.yaml)
 * the way a host would receive it: templates filled in with sample values, secrets as the worker quotes them.
 *
 * The parser is tree-sitter's PowerShell grammar (npm tree-sitter-powershell, its WebAssembly build, loaded by
 * web-tree-sitter): Microsoft's own parser ships only inside PowerShell, which none of the registries this project
 * installs from carries for Linux. The grammar finds syntax errors (an unbalanced quote or brace, cmd.exe's
 * `"C:\path\tool.exe" /quiet` without `&`, PowerShell 7's `a ? b : c` and `??`); it knows PowerShell 7's `&&` and
 * `||`, so those are refused here by name, as are two mistakes that parse: msiexec called directly (a GUI program,
 * which PowerShell does not wait for) and a `-Command` argument, whose quoting this check cannot see into. It cannot
 * tell whether a cmdlet, parameter or path exists on the host, nor what a command does when it runs.
 *
 * `npm run check-powershell -- PLAN...` checks plans from the command line; test/pure/windowsTemplates.test.ts checks
 * both templates in CI.
 */
import { Language, type Node, Parser } from 'web-tree-sitter';
import { readPlan } from '../client/readPlan';
import { UserError } from '../core/errors';
import { type UpgradePlan, renderCommand } from '../core/plan';
import { shellQuote, substituteSecrets, secretTemplates, secretRefText } from '../core/secrets';

/** A command of a plan with where it is, as the plan validator names paths. */
export interface PlanCommand {
  path: (string | number)[];
  text: string;
}

/**
 * What a secret stands for while checking: `"`, `$`, `;`, `&` and a space, which a single-quoted PowerShell string
 * keeps literal, as the worker's POSIX quoting does. A value with `'` is quoted differently by the two (README).
 */
export const SAMPLE_SECRET = 'p@ss w"rd; $x & y';

let parser: Promise<Parser> | undefined;

/** One parser per process: loading the grammar's WebAssembly takes a few hundred milliseconds. */
function powershellParser(): Promise<Parser> {
  parser ??= (async () => {
    await Parser.init();
    // The grammar's WebAssembly build: its native Node binding would need its install script, which npm is told not to run.
    const grammar = require.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
    const instance = new Parser();
    instance.setLanguage(await Language.load(grammar));
    return instance;
  })();
  return parser;
}

/** Every `run` and `undo` text of the plan, found by walking it, so commands a later schema adds are checked too. */
export function planCommands(plan: UpgradePlan): PlanCommand[] {
  const found: PlanCommand[] = [];
  const walk = (value: unknown, path: (string | number)[]): void => {
    if (Array.isArray(value)) value.forEach((item, index) => walk(item, [...path, index]));
    else if (typeof value === 'object' && value !== null) {
      for (const [key, child] of Object.entries(value)) {
        if ((key === 'run' || key === 'undo') && typeof child === 'string') found.push({ path: [...path, key], text: child });
        else walk(child, [...path, key]);
      }
    }
  };
  walk(plan, []);
  return found;
}

/** The command as a host would get it: the plan's templates filled with sample values, each secret quoted as the worker does. */
export function sampleRendering(plan: UpgradePlan, text: string): string {
  const host = plan.hosts[0]?.id ?? 'host-01';
  const rendered = renderCommand(text, { host, fleet: plan.fleet, source: plan.source, target: plan.target, version: plan.target, backup: `${plan.fleet}-before-${plan.target}-sample`, database: plan.database.name, previousDatabase: plan.database.previous ?? plan.database.name });
  const secrets = new Map(secretTemplates(rendered).map((ref) => [secretRefText(ref), SAMPLE_SECRET]));
  return substituteSecrets(rendered, secrets, shellQuote);
}

function at(node: Node): string {
  return `column ${node.startPosition.column + 1}`;
}

function excerpt(source: string, node: Node): string {
  const text = source.slice(node.startIndex, Math.min(node.endIndex, node.startIndex + 40));
  return JSON.stringify(text.length > 0 ? text : source.slice(Math.max(0, node.startIndex - 20), node.startIndex + 20));
}

/** The first syntax error under `node`: an ERROR node, or a token the grammar had to assume (MISSING). */
function firstSyntaxError(node: Node): Node | undefined {
  if (node.isError || node.isMissing) return node;
  if (!node.hasError) return undefined;
  for (const child of node.children) {
    const found = child ? firstSyntaxError(child) : undefined;
    if (found) return found;
  }
  return node;
}

/** The command's name as written (`msiexec`, `& "C:\x.exe"` gives the quoted path), lower case, without its quotes. */
function commandName(command: Node): string {
  const name = command.childForFieldName('command_name');
  return (name?.text ?? '').replace(/^["']|["']$/g, '').toLowerCase();
}

/** What parses but would not run as meant under Windows PowerShell 5.1. */
function windowsPowershellProblems(source: string, root: Node): string[] {
  const problems: string[] = [];
  for (const chain of root.descendantsOfType('pipeline_chain_tail')) {
    if (chain) problems.push(`${at(chain)}: ${excerpt(source, chain)}: && and || between commands are PowerShell 7 only; Windows PowerShell 5.1 refuses them: use "; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }" or check each step`);
  }
  for (const command of root.descendantsOfType('command')) {
    if (!command) continue;
    const name = commandName(command);
    if (/(^|\\)msiexec(\.exe)?$/.test(name)) {
      problems.push(`${at(command)}: msiexec called directly: it is a GUI program, which PowerShell starts without waiting for its exit code; use Start-Process msiexec.exe -ArgumentList ... -Wait -PassThru and check ExitCode (0, or 3010: success, reboot required)`);
    }
    if (/(^|\\)(powershell|pwsh)(\.exe)?$/.test(name) && /(^|\s)-(c|command)\s/i.test(command.text)) {
      problems.push(`${at(command)}: ${name} -Command inside a command: the host already runs PowerShell (sshd's DefaultShell), and the inner command's quoting cannot be checked; write the statements themselves, or use -File`);
    }
  }
  return problems;
}

/** Why `source` would not run under Windows PowerShell 5.1, one line each; empty when it parses. */
export async function powershellProblems(source: string): Promise<string[]> {
  const tree = (await powershellParser()).parse(source);
  if (!tree) throw new Error('the PowerShell grammar returned no tree');
  try {
    const error = firstSyntaxError(tree.rootNode);
    if (error) return [`${at(error)}: ${excerpt(source, error)}: ${error.isMissing ? `missing ${error.type}` : 'does not parse as PowerShell'}`];
    return windowsPowershellProblems(source, tree.rootNode);
  } finally {
    tree.delete();
  }
}

/** Every problem of every command of the plan, each naming the command's path; empty when all parse. */
export async function planPowershellProblems(plan: UpgradePlan): Promise<string[]> {
  const problems: string[] = [];
  for (const command of planCommands(plan)) {
    for (const problem of await powershellProblems(sampleRendering(plan, command.text))) problems.push(`${command.path.join('.')}: ${problem}`);
  }
  return problems;
}

async function main(files: string[]): Promise<void> {
  if (files.length === 0) throw new UserError('usage: npm run check-powershell -- PLAN.yaml... (plans whose commands run under Windows PowerShell 5.1)');
  let failed = false;
  for (const file of files) {
    const plan = readPlan(file);
    const problems = await planPowershellProblems(plan);
    failed ||= problems.length > 0;
    console.log(problems.length === 0 ? `${file}: all ${planCommands(plan).length} commands parse as Windows PowerShell` : [`${file}:`, ...problems.map((p) => `  ${p}`)].join('\n'));
  }
  if (failed) process.exitCode = 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof UserError ? error.message : error);
    process.exitCode = 1;
  });
}
