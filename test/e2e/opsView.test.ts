/**
 * `cutover watch` and `cutover report` on one real run (the test server, an in-process lab worker), as a user runs
 * them: the watch in a real terminal (tmux at 120x40, read back with capture-pane) and through a pipe; the report
 * written by the CLI and opened in headless Chromium. The run stops at its gate, then at a failed install, is
 * retried and completes. Screenshots are kept as test artifacts (CUTOVER_ARTIFACTS_DIR, default a temp dir);
 * with UPDATE_SCREENSHOTS=1 they also replace the README's, docs/watch.png and docs/report.png.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunResult } from '../../core/status';
import { labFault } from '../../lab/lab';
import { approveUpdate, retryUpdate } from '../../workflows/messages';
import { upgradeFleet } from '../../workflows/upgradeFleet';
import { ROOT, freshLab, labPlan, labWorker, quickRetries, useTemporalClient, waitFor } from '../helpers';
import { launchChromium } from '../ui/browser';
import { type CliResult, cliEnv, cutover, describeRun, expectOk, expectUserError, startCutover, tempDir } from './cli';

const HOSTS = ['appv-01', 'appv-02', 'appv-03', 'appv-04'];
const ARTIFACTS = process.env.CUTOVER_ARTIFACTS_DIR ?? join(tmpdir(), 'cutover-artifacts');
const FOLLOW_UP = 'Tell the service desk that App-V is back at 4.5';

/** A tmux server of this test's own (its own socket), so nobody else's sessions are touched. */
class Terminal {
  private readonly socket = `cutover-test-${randomUUID().slice(0, 8)}`;
  constructor(private readonly env: NodeJS.ProcessEnv) {}

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8', env: this.env });
  }

  /** Runs `cutover ARGS` in a new 120x40 session; the shell then prints its exit code and waits. */
  run(session: string, args: string[]): void {
    const command = `node ${join(ROOT, 'bin', 'cutover.js')} ${args.join(' ')}; echo EXIT=$?; sleep 300`;
    this.tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '40', command);
  }

  /** The visible screen, trailing blank lines cut; with `colours`, its SGR escapes kept. */
  screen(session: string, colours = false): string {
    return this.tmux('capture-pane', '-p', ...(colours ? ['-e'] : []), '-t', session).replace(/\s+$/, '');
  }

  async waitFor(session: string, text: string | RegExp, what: string, ms = 60_000): Promise<string> {
    try {
      return await waitFor(async () => {
        const screen = this.screen(session);
        return (typeof text === 'string' ? screen.includes(text) : text.test(screen)) ? screen : undefined;
      }, what, ms);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen:\n${this.screen(session)}`);
    }
  }

  close(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // already gone
    }
  }
}

const SGR_COLOURS: Record<number, string> = { 31: '#ef5350', 32: '#66bb6a', 33: '#ffca28', 36: '#4dd0e1', 90: '#8a8a8a' };

/** A capture with SGR escapes (the colours the watch uses) as HTML spans. */
function sgrToHtml(screen: string): string {
  let colour: string | undefined;
  let bold = false;
  return screen
    .split(/\x1b\[([0-9;]*)m/)
    .map((part, i) => {
      if (i % 2 === 1) {
        for (const code of part.split(';').map(Number)) {
          if (code === 0) [colour, bold] = [undefined, false];
          else if (code === 1) bold = true;
          else if (code === 22) bold = false;
          else if (code === 39) colour = undefined;
          else if (SGR_COLOURS[code]) colour = SGR_COLOURS[code];
        }
        return '';
      }
      const text = part.replace(/&/g, '&amp;').replace(/</g, '&lt;');
      return colour || bold ? `<span style="${colour ? `color:${colour};` : ''}${bold ? 'font-weight:bold' : ''}">${text}</span>` : text;
    })
    .join('');
}

/** A terminal capture as a picture: the text in a terminal-like page, screenshotted by Chromium. */
async function terminalPicture(browser: Browser, screen: string, file: string): Promise<void> {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 }, deviceScaleFactor: 1 });
  await page.setContent(
    `<body style="margin:0;background:#1e1e1e"><pre id="t" style="display:inline-block;margin:0;padding:14px 18px;background:#1e1e1e;color:#e0e0e0;font:13px/1.2 'DejaVu Sans Mono',monospace">${sgrToHtml(screen)}</pre></body>`,
  );
  await page.locator('#t').screenshot({ path: file });
  await page.close();
}

function keep(file: string, docsName: string): void {
  if (process.env.UPDATE_SCREENSHOTS === '1') copyFileSync(file, join(ROOT, 'docs', docsName));
}

const REFUSALS: [(run: string) => string[], string[]][] = [
  [(run) => ['report', run, '--html', 'report.md'], ['--html', "the html report's file name must end in .html or .htm"]],
  [(run) => ['report', run, '--md', '/no/such/dir/report.md'], ['Cannot write the report to /no/such/dir/report.md: its directory does not exist']],
  [() => ['report', 'cutover-no-such-run'], ['No run cutover-no-such-run']],
  [() => ['watch', 'cutover-no-such-run'], ['No run cutover-no-such-run']],
];

describe('cutover watch and cutover report on a real run', () => {
  let refusals: Promise<CliResult[]> = Promise.resolve([]);
  const temporal = useTemporalClient();
  let lab: string;
  let handle: WorkflowHandle<typeof upgradeFleet>;
  let env: Record<string, string>;
  let terminal: Terminal;
  let stopWorker: () => Promise<void>;
  let browser: Browser;
  const workflowId = () => handle.workflowId;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    lab = freshLab({ hosts: HOSTS.length });
    const { worker, taskQueue, close } = await labWorker(lab);
    const running = worker.run();
    stopWorker = async () => {
      worker.shutdown();
      await running;
      await close();
    };
    env = { TEMPORAL_ADDRESS: inject('temporalAddress'), CUTOVER_TASK_QUEUE: taskQueue, CUTOVER_LAB_DIR: lab };
    terminal = new Terminal(cliEnv(env));
    // appv-03's installer fails both attempts (a guided failure); appv-02's takes 10 s, so the batch is seen under
    // way by a watch that starts after the approval (a CLI takes seconds to start on a busy machine).
    labFault(lab, 'appv-03', 'install', { times: 2 });
    labFault(lab, 'appv-02', 'install', { delaySeconds: 10 });
    // Phases over all four hosts run in child workflows (over 3 hosts), the upgrade of the other three in the run
    // itself: the report reads the children's histories too, and the watch shows the upgrade's batch under way.
    const quick = quickRetries(labPlan(HOSTS));
    const plan = { ...quick, followUp: [FOLLOW_UP], execution: { ...quick.execution, hostsPerWorkflow: 3 } };
    handle = await temporal.client.workflow.start(upgradeFleet, { taskQueue, workflowId: `cutover-${plan.fleet}`, args: [plan] });
    browser = await launchChromium();
  });

  afterAll(async () => {
    terminal?.close();
    await browser?.close();
    await stopWorker?.();
  });

  it('watch, in a terminal and through a pipe, stops at the gate with its instructions and the command that approves it', async () => {
    const piped = startCutover(['watch', workflowId()], { env, timeoutMs: 60_000 });
    terminal.run('gate', ['watch', workflowId()]);
    const screen = await terminal.waitFor('gate', 'EXIT=', 'the watch to stop at the gate');
    writeFileSync(join(ARTIFACTS, 'watch-gate.txt'), screen);
    expect(screen).toContain(`${workflowId()}: ${handle.workflowId.slice('cutover-'.length)} 4.1-SP1 → 4.5    phase: awaiting-approval`);
    expect(screen).toMatch(/ {2}preflight {2}█{30} {2}4\/4 done/);
    expect(screen).toMatch(/ {2}drain {6}░{30} {2}0\/4 done, 4 to go/);
    expect(screen).toContain('Waiting for approval at gate beforeOffline (0/1, approvers: anyone)');
    expect(screen).toContain('All App-V servers sharing APPVDB go offline');
    expect(screen).toContain(`approve with: cutover approve ${workflowId()} --as NAME`);
    expect(screen).toContain(`${workflowId()} waits for gate beforeOffline.\nEXIT=2`);

    const plain = await piped.done;
    expect(plain.code, describeRun(plain)).toBe(2);
    // No escape codes: a line per fact, each stamped, the gate's with its command.
    expect(plain.stdout).not.toContain('\x1b');
    const lines = plain.stdout.trim().split('\n');
    expect(lines.every((line) => /^\[\d\d:\d\d:\d\d\] \S/.test(line)), plain.stdout).toBe(true);
    expect(lines).toContainEqual(expect.stringMatching(/\] preflight: 4\/4 done$/));
    expect(lines).toContainEqual(expect.stringContaining(`Waiting for approval at gate beforeOffline (0/1, approvers: anyone): All App-V servers`));
    expect(lines.filter((line) => line.includes('] phase awaiting-approval'))).toHaveLength(1);
  });

  it('watch shows the batch under way, then the failed host with its error line and the commands to answer', async () => {
    await handle.executeUpdate(approveUpdate, { args: [{ approver: 'alice' }] });
    terminal.run('failure', ['watch', workflowId()]);
    const underWay = await terminal.waitFor('failure', /Under way: upgrade on appv-0\d/, 'the upgrade batch under way');
    expect(underWay).toMatch(/▶ upgrade/);
    // While appv-02's install takes its time, the refusals of the last test run (CLIs take seconds to start).
    refusals = Promise.all(REFUSALS.map(([args]) => cutover(args(workflowId()), { env })));
    const screen = await terminal.waitFor('failure', 'EXIT=', 'the watch to stop at the failure');
    writeFileSync(join(ARTIFACTS, 'watch.txt'), screen);
    const coloured = terminal.screen('failure', true);
    // Failed hosts in red (capture-pane writes a colour where it changes, so once for the heading and its list).
    expect(coloured).toMatch(/\x1b\[31mFailed hosts:\n {2}✖ appv-03: upgrade failed/);
    expect(screen).toMatch(/ {2}stop {7}█{30} {2}4\/4 done/);
    expect(screen).toMatch(/ {2}backup {5}done: \S+ \(checksum [0-9a-f]{12}…\)/);
    expect(screen).toMatch(/ {2}upgrade {4}█+✖+░+ {2}1\/4 done, 1 failed, 2 to go/);
    expect(screen).toContain('✖ appv-03: upgrade failed (exit 1) after 2 attempt(s) — FAULT: injected transient failure of install on appv-03');
    expect(screen).toContain(`choose: cutover retry ${workflowId()} --as NAME`);
    expect(screen).toContain(`or: cutover skip ${workflowId()} --as NAME --host appv-03`);
    expect(screen).toContain(`${workflowId()} waits for an operator.\nEXIT=2`);
    // The picture is the watch's view; the shell's own line after it is not.
    await terminalPicture(browser, coloured.replace(/\nEXIT=2$/, ''), join(ARTIFACTS, 'watch.png'));
    keep(join(ARTIFACTS, 'watch.png'), 'watch.png');
  });

  it('after a retry the run completes; watch of the closed run says so and exits 0', async () => {
    await handle.executeUpdate(retryUpdate, { args: [{ operator: 'olga' }] });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    const done = await cutover(['watch', workflowId()], { env });
    expect(done.code, describeRun(done)).toBe(0);
    expect(done.stdout).toMatch(/\] online: 4\/4 done\n/);
    expect(done.stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`\\] ${workflowId()}: run completed$`));
  });

  it('report writes HTML, Markdown and SVG from the history; the HTML opens in Chromium with the timeline, every host and the checklist', async () => {
    const result = (await handle.result()) as RunResult;
    const dir = tempDir();
    const files = { html: join(dir, 'report.html'), md: join(dir, 'report.md'), svg: join(dir, 'timeline.svg') };
    const written = await cutover(['report', workflowId(), '--html', files.html, '--md', files.md, '--svg', files.svg], { env });
    expectOk(written);
    expect(written.stderr).toContain(`report of ${workflowId()} written to ${files.html}, ${files.md}, ${files.svg}`);

    const md = readFileSync(files.md, 'utf8');
    expect(md).toContain(`## Cutover ${result.fleet}: 4.1-SP1 → 4.5: **completed**`);
    expect(md).toMatch(/\| beforeOffline \| approve \| alice \| \d\d:\d\d:\d\d \| {2}\|/);
    expect(md).toMatch(/\| guided-failure \| retry \| olga \|/);
    expect(md).toMatch(/\| \d\d:\d\d:\d\d \| appv-03 \| upgrade \| upgrade failed: FAULT: injected transient failure of install on appv-03 \|/);
    expect(md).toContain(`| upgraded | 4 | 4.1-SP1 → 4.5 | ${HOSTS.join(', ')} |`);
    expect(md).toContain(`checksum \`${result.backup?.checksum}\``);
    expect(md).toContain(`- [ ] ${FOLLOW_UP}`);
    expect(md).toContain('package validation');
    expect(readFileSync(files.svg, 'utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);

    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const fetched: string[] = [];
    page.on('request', (request) => fetched.push(request.url()));
    await page.goto(`file://${files.html}`);
    await expect.poll(() => page.locator('svg rect').count()).toBeGreaterThan(10);
    // Every host, its versions, each step: one row per host, all upgraded.
    const rows = page.locator('details', { hasText: 'upgraded: 4 host(s), 4.1-SP1 → 4.5' }).locator('tr');
    expect(await rows.count()).toBe(HOSTS.length + 1);
    expect(await rows.nth(3).innerText()).toMatch(/^appv-03\t4\.1-SP1\t4\.5\t✔ [^\t]+\t✔ [^\t]+\t✔ [^\t]+\t✔ [^\t]+ ×2/);
    expect(await page.locator('ul.check li').allInnerTexts()).toEqual([FOLLOW_UP]);
    expect(await page.locator('p', { hasText: `Backup ${result.backup?.name}, checksum ${result.backup?.checksum}` }).isVisible()).toBe(true);
    expect(fetched).toEqual([`file://${files.html}`]);
    // preflight, drain, stop, verify and online ran in child workflows: their steps came from the children's histories.
    expect(await page.locator('p.muted', { hasText: 'Made by cutover report' }).innerText()).toBe(
      `Made by cutover report from the history of ${workflowId()} and its 5 child workflow(s).`,
    );
    await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
    keep(join(ARTIFACTS, 'report.png'), 'report.png');
    await page.close();
  });

  it('refuses bad arguments clearly: a file of another kind, a directory that does not exist, a run that does not exist', async () => {
    const results = await refusals;
    expect(results, 'the refusals started while the run upgraded').toHaveLength(REFUSALS.length);
    results.forEach((result, i) => expectUserError(result, ...(REFUSALS[i]?.[1] ?? [])));
  });
});
