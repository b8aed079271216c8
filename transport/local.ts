import { spawn } from 'node:child_process';
import { appendTail, type HostTransport, type RunResult } from './transport';

/**
 * Runs commands with /bin/sh on this machine. Each command gets its own process group so a timeout or
 * cancellation kills everything it started (an installer's children included).
 */
export function createLocalTransport(options: { env?: Record<string, string> } = {}): HostTransport {
  return {
    run(host, command, { timeoutMs, signal, onOutput }) {
      return new Promise<RunResult>((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', command], {
          env: { ...process.env, ...options.env, CUTOVER_HOST: host.id },
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
        let tail = '';
        let timedOut = false;
        const onData = (data: Buffer) => {
          const text = data.toString('utf8');
          tail = appendTail(tail, text);
          onOutput?.(text);
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        const kill = () => {
          try {
            if (child.pid) process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        };
        const timer = setTimeout(() => {
          timedOut = true;
          kill();
        }, timeoutMs);
        signal?.addEventListener('abort', kill, { once: true });
        if (signal?.aborted) kill();
        child.on('error', (error) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', kill);
          reject(error);
        });
        let settled = false;
        const finish = (code: number | null) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', kill);
          if (timedOut) tail = appendTail(tail, `\n[cutover] killed after ${timeoutMs} ms timeout\n`);
          resolve({ exitCode: code ?? 137, outputTail: tail, timedOut });
        };
        // The command is done when its shell exits. A service it started in the background may keep the output
        // pipes open; give them a moment to drain, then stop waiting (and never kill what it left running).
        child.on('exit', (code) => {
          const grace = setTimeout(() => finish(code), 500);
          child.once('close', () => {
            clearTimeout(grace);
            finish(code);
          });
        });
      });
    },
    async close() {},
  };
}
