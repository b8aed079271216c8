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

/** What each seed asks of its template, as the plan's fields say it; the lab plans show the same in the lab. */
describe('the Windows templates follow their seeds', () => {
  const byFile = (file: string) => {
    const plan = templates.find((t) => t.file === file)?.plan;
    if (!plan) throw new Error(`no ${file}`);
    return plan;
  };
  const roleOf = (plan: ReturnType<typeof byFile>, kind: string) => Object.entries(plan.roles).find(([, role]) => role.kind === kind);

  it('GP: a new database beside the old one, undos back on the old one, verify checks the database each host points at', () => {
    const plan = byFile('gp-web-windows.yaml');
    expect({ strategy: plan.database.strategy, previous: plan.database.previous, restore: plan.database.restore }).toEqual({
      strategy: 'new-database',
      previous: 'CHANGE-ME-OLD-WEBCONFIG-DB',
      restore: undefined,
    });
    const web = roleOf(plan, 'web-site');
    const session = roleOf(plan, 'session-host');
    if (!web || !session) throw new Error('a role of kind web-site and one of kind session-host');
    expect([web[0], session[0]]).toEqual(['web-server', 'session-host']);
    for (const [name, role] of Object.entries(plan.roles)) {
      expect({ name, undo: role.steps.upgrade?.undo?.includes('WEBCONFIGDB={{previousDatabase}}') }).toEqual({ name, undo: true });
    }
    for (const [name, role] of [web, session]) {
      expect({ name, verify: role.steps.verify?.run?.includes("-Database '{{database}}'") }).toEqual({ name, verify: true });
    }
    // The seed verifies the Session Central Service running on the web host, not only by an HTTP probe.
    expect(web[1].steps.verify?.run).toMatch(/Get-Service -Name 'DynamicsGPSessionCentralService'\)\.Status -ne 'Running'/);
  });

  it('App-V: every kind of host the seed upgrades, each with its steps, back to its own starting version', () => {
    const plan = byFile('appv-windows.yaml');
    const kinds = ['management-server', 'management-web-service', 'console'];
    const hostsOfKind = kinds.map((kind) => plan.hosts.filter((host) => host.roles.includes(roleOf(plan, kind)?.[0] ?? '?')).length);
    expect(hostsOfKind.every((count) => count >= 1)).toBe(true);
    expect(Object.keys(roleOf(plan, 'console')?.[1].steps ?? {}).sort()).toEqual(['upgrade', 'verify', 'version']);
    // Each undo installs the host's own starting version ({{source}}), from media staged for both 4.1 and 4.1 SP1.
    for (const [name, role] of Object.entries(plan.roles)) {
      expect({ name, undo: /'\/i "C:\\cutover\\\{\{source\}\}\\/.test(role.steps.upgrade?.undo ?? '') }).toEqual({ name, undo: true });
    }
    // The backup is read back before the schema upgrade, as a DBA does, and its content's checksum printed last.
    expect(plan.database.verifyBackup?.run).toContain("RESTORE VERIFYONLY FROM DISK = N'D:\\Backups\\{{backup}}.bak' WITH CHECKSUM");
    const staging = plan.prerequisites.find((p) => p.name === 'ready-appv-mgmt-01');
    expect(staging && 'check' in staging ? staging.check.run : '').toContain("foreach ($folder in '4.1', '4.1-SP1', '{{target}}', 'scripts')");
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
