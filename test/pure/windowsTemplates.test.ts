/**
 * The real-world Windows templates as their hosts would run them: every command, with its templates and secrets
 * filled in as the worker fills them, parses as Windows PowerShell 5.1 (scripts/checkPowershell.ts, tree-sitter's
 * PowerShell grammar), and the checker refuses what would not run. Plus what a reader of the templates checks by
 * eye: no network path without an explicit login, no Windows login to SQL Server, msiexec's 3010 is success, and a
 * downgrade uninstalls before it installs.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPlan } from '../../client/readPlan';
import { SAMPLE_SECRET, planCommands, planPowershellProblems, powershellProblems, sampleRendering } from '../../scripts/checkPowershell';

const EXAMPLES = join(__dirname, '..', '..', 'examples');
const TEMPLATES = ['appv-windows.yaml', 'gp-web-windows.yaml'];
const templates = TEMPLATES.map((file) => ({ file, plan: readPlan(join(EXAMPLES, file)) }));

describe('the Windows templates', () => {
  it.each(templates)('$file: every command parses as Windows PowerShell 5.1', async ({ plan }) => {
    // Every step of every role, the database's commands and the prerequisites' checks: far more than a handful.
    expect(planCommands(plan).length).toBeGreaterThanOrEqual(20);
    expect(await planPowershellProblems(plan)).toEqual([]);
  });

  it.each(templates)('$file: no step needs network credentials, installers accept 3010, downgrades uninstall first', ({ plan }) => {
    for (const { path, text } of planCommands(plan)) {
      const where = path.join('.');
      // A \\share only where it is mapped with an explicit account (the staging prerequisites).
      if (text.includes('\\\\')) expect({ where, explicitLogin: /-Credential \$credential/.test(text) }).toEqual({ where, explicitLogin: true });
      expect({ where, windowsLoginToSql: /sqlcmd(\.exe)?\b[^;]*\s-E\b/.test(text) }).toEqual({ where, windowsLoginToSql: false });
      if (/msiexec/.test(text)) expect({ where, accepts3010: /@\(0, 3010\) -notcontains \$p\.ExitCode/.test(text) }).toEqual({ where, accepts3010: true });
      if (path.at(-2) === 'upgrade' && path.at(-1) === 'undo') {
        const uninstall = text.indexOf('/x ');
        expect({ where, uninstallsFirst: uninstall >= 0 && uninstall < text.indexOf('/i "') }).toEqual({ where, uninstallsFirst: true });
      }
    }
  });
});

describe('the PowerShell check', () => {
  it('accepts Windows PowerShell 5.1', async () => {
    expect(await powershellProblems(`$ErrorActionPreference = 'Stop'; & 'C:\\Program Files\\x.exe' /quiet; if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }`)).toEqual([]);
  });

  it.each([
    ['a chain with &&, PowerShell 7 only', 'Stop-Service AppVirtServer && Start-Service AppVirtServer', '&& and || between commands are PowerShell 7 only'],
    ['a chain with ||', 'Test-Path C:\\x || exit 1', '&& and || between commands are PowerShell 7 only'],
    ["cmd.exe's way of running a quoted path", '"C:\\Program Files\\Wizard.exe" /quiet', 'does not parse as PowerShell'],
    ['an unbalanced quote', `Stop-Service -Name 'AppVirtServer`, 'does not parse as PowerShell'],
    ['an unclosed brace', 'if ($LASTEXITCODE -ne 0) { exit 1', 'missing }'],
    ["PowerShell 7's ternary", '$a = $ok ? 0 : 1', 'does not parse as PowerShell'],
    ['msiexec without Start-Process -Wait', 'msiexec /i C:\\cutover\\x.msi /qn; exit $LASTEXITCODE', 'msiexec called directly'],
    ['a nested powershell -Command', `powershell -NoProfile -Command "Stop-Service 'x'"`, 'powershell -Command inside a command'],
  ])('refuses %s', async (_name, source, says) => {
    const problems = await powershellProblems(source);
    expect(problems).toEqual([expect.stringContaining(says)]);
  });

  it('checks a command with its secrets quoted as the worker quotes them', async () => {
    const plan = templates[0]?.plan;
    if (!plan) throw new Error('no template');
    const assigned = sampleRendering(plan, '$password = {{secret:env:PW}}; Write-Output {{host}}');
    expect(assigned).toBe(`$password = '${SAMPLE_SECRET}'; Write-Output ${plan.hosts[0]?.id}`);
    expect(await powershellProblems(assigned)).toEqual([]);
    // Inside a double-quoted string the value's own quote ends the string: the check sees what the host would.
    expect(await powershellProblems(sampleRendering(plan, 'Write-Output "{{secret:env:PW}}"'))).not.toEqual([]);
  });
});
