'use strict';
/**
 * Runs shell commands for the local transport. Plain CommonJS with nothing but Node built-ins, because it also
 * runs as the worker's *spawner*: a lean child process that does the spawning. Node forks the whole calling process
 * to spawn a command, so 500 spawns take ~0.9 s from a 60 MB process but ~6.5 s from a 360 MB worker (the scale
 * issue's measurement); `npm run bench` compares the two.
 *
 * The spawner also keeps the *journal* of a batch: a line when a host's command starts and one when it ends,
 * written before the worker hears of it. If the worker is killed, the spawner finishes the commands under way and
 * journals them, and the next attempt on this machine skips every host the journal shows done.
 */
const { spawn } = require('node:child_process');
const { close, closeSync, fstatSync, fsync, mkdirSync, open: openFile, openSync, writeSync } = require('node:fs');
const { dirname } = require('node:path');

const OUTPUT_TAIL_CHARS = 4096;
/** After the shell exits, how long to wait for the output pipes a background service may hold open. */
const PIPE_GRACE_MS = 500;

/**
 * Control characters other than tab and line ends say nothing to a person and cost six bytes each once the tail is
 * JSON (`\u0000`): a Windows tool writing UTF-16 would double its tail with NULs, a coloured one add escapes.
 */
const UNPRINTABLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/g;

function appendTail(tail, chunk) {
  const next = tail + chunk.replace(UNPRINTABLE, '');
  return next.length > OUTPUT_TAIL_CHARS ? next.slice(next.length - OUTPUT_TAIL_CHARS) : next;
}

/**
 * Always left out of a command's environment: the worker's Temporal connection settings, its credentials among
 * them (TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_KEY_DATA, TEMPORAL_GRPC_META_* headers, TEMPORAL_CODEC_AUTH). A command
 * that prints its environment would put them in its output tail, and so in Temporal's history. @temporalio/envconfig
 * reads TEMPORAL_* variables only, so all of them go, whatever a later version adds; no host command needs them.
 */
// The worker's Temporal connection and its codec's keys and token (CUTOVER_CODEC_KEYS, CUTOVER_CODEC_KEY_*, ...).
const ALWAYS_EXCLUDED = ['TEMPORAL_*', 'CUTOVER_CODEC_*'];

/** `NAME` or `PREFIX*` */
function excludes(patterns, name) {
  return patterns.some((pattern) => (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern));
}

/**
 * The environment a command inherits from `base` (the worker's): all of it but the Temporal settings, the names or
 * `PREFIX*` patterns CUTOVER_COMMAND_ENV_EXCLUDE lists (comma-separated), and `withoutNames` (the env: secrets the
 * command's step resolved: the worker substituted them, the command never needs the variable itself).
 */
function commandEnvironment(base, withoutNames = []) {
  const listed = (base.CUTOVER_COMMAND_ENV_EXCLUDE ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '');
  const patterns = [...ALWAYS_EXCLUDED, ...listed, ...withoutNames];
  return Object.fromEntries(Object.entries(base).filter(([name]) => !excludes(patterns, name)));
}

/**
 * The journals commands under way write to, each open once (`O_APPEND`) for as long as one of its commands runs or
 * waits for its commit: an open, a mkdir and a close per line cost the spawner more than the write.
 */
const openJournals = new Map();

/** A command of `file` begins: its journal is opened if none of its commands has it open. */
function openJournal(file) {
  if (!file) return;
  let open = openJournals.get(file);
  if (!open) {
    open = { fd: undefined, users: 0 };
    try {
      mkdirSync(dirname(file), { recursive: true });
      open.fd = openSync(file, 'a');
      // A journal just created is a new directory entry: until the directory is on disk too, a machine crash can lose
      // the whole file, and with it every end the group commit made durable. Its first commit syncs the directory.
      open.created = fstatSync(open.fd).size === 0;
    } catch (error) {
      process.emitWarning(`cutover: cannot open the journal ${file}: ${error.message}`);
    }
    openJournals.set(file, open);
  }
  open.users++;
}

/** fsync of a directory, on libuv's pool like the journal's own; a failure only leaves the file less durable. */
function syncDirectory(dir, then) {
  openFile(dir, 'r', (error, fd) => {
    if (error) return then();
    fsync(fd, () => close(fd, () => then()));
  });
}

/** A command of `file` is done with it (its end committed): the last one closes it. */
function leaveJournal(file) {
  const open = file && openJournals.get(file);
  if (!open || --open.users > 0) return;
  openJournals.delete(file);
  if (open.fd !== undefined) closeSync(open.fd);
  if (openJournals.size === 0) journalsClosed();
}

/** Called once no journal is open: every end journaled is committed. */
let journalsClosed = () => {};

/**
 * Appends one line. A write that fails (a full disk: ENOSPC) must not throw: it would kill the spawner, and with it
 * every command under way. The command goes on; the worker still hears its result over IPC, and only a retry after
 * a lost worker misses the line (it then waits for the command's process group, see activities/journal.ts).
 */
function journal(file, entry) {
  const fd = file ? openJournals.get(file)?.fd : undefined;
  if (fd === undefined) return;
  try {
    writeSync(fd, `${JSON.stringify(entry)}\n`);
  } catch (error) {
    process.emitWarning(`cutover: cannot journal ${entry.event} of ${entry.host} in ${file}: ${error.message}`);
  }
}

/**
 * Group commit: a command's end goes to disk soon after it is journaled, since a journal line lost to a machine crash
 * would run a finished command again. One fsync covers every end journaled while the one before it ran, so a batch of
 * hosts finishing together costs one fsync, not one each; it runs on libuv's pool, never blocking the spawner. The
 * result does not wait for it: after a command that wrote files (an installer), an fsync flushes the file system's
 * journal with them, which can take longer than the command. Waiting would not make a crash run fewer commands again,
 * since the command has ended either way; the worker's heartbeat then reaches the server, which only adds what it knows.
 */
const commits = new Map();

function commit(file, then) {
  if (!file) return then();
  let commit = commits.get(file);
  if (!commit) {
    commit = { syncing: false, waiting: [] };
    commits.set(file, commit);
  }
  commit.waiting.push(then);
  if (!commit.syncing) setImmediate(() => flush(file, commit));
}

function flush(file, commit) {
  if (commit.syncing || commit.waiting.length === 0) return;
  const batch = commit.waiting.splice(0);
  commit.syncing = true;
  const done = () => {
    commit.syncing = false;
    for (const then of batch) then();
    if (commit.waiting.length > 0) setImmediate(() => flush(file, commit));
    else commits.delete(file);
  };
  // The commands waiting here keep the journal open until it is done.
  const journal = openJournals.get(file);
  if (journal?.fd === undefined) return done();
  const created = journal.created;
  journal.created = false;
  fsync(journal.fd, () => (created ? syncDirectory(dirname(file), done) : done()));
}

/**
 * Runs `command` with /bin/sh in its own process group, so a timeout or kill stops everything it started.
 * Resolves with { exitCode, outputTail, timedOut }; `kill()` on the returned handle stops it.
 */
function runCommand(request, onOutput) {
  const { command, host, env, withoutEnv, timeoutMs, journalFile } = request;
  // What the journal files the command under: the host, or the activity for a database task (activities/database.ts).
  const key = request.journalKey ?? host;
  let kill = () => {};
  const done = new Promise((resolve, reject) => {
    openJournal(journalFile);
    let child;
    try {
      child = spawn('/bin/sh', ['-c', command], {
        env: { ...inheritedEnvironment(withoutEnv), ...env, CUTOVER_HOST: host },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (error) {
      // Most spawn failures arrive as 'error' below; one thrown here (E2BIG: an environment too large) is journaled
      // as they are, and must not keep the journal open for good.
      journal(journalFile, { host: key, event: 'failed', exitCode: -1, outputTail: error.message });
      leaveJournal(journalFile);
      throw error;
    }
    // The token tells this spawner from a later process that happens to get the same pid; the process group (the
    // shell's pid, as it leads its own group) and the time it may run let a retry wait for the command itself when
    // the spawner is gone too (activities/journal.ts).
    const started = { pid: process.pid, ...(spawnerToken ? { token: spawnerToken } : {}), ...(child.pid ? { pgid: child.pid } : {}), until: Date.now() + timeoutMs };
    journal(journalFile, { host: key, event: 'start', ...started });
    let tail = '';
    let timedOut = false;
    const onData = (data) => {
      const text = data.toString('utf8');
      tail = appendTail(tail, text);
      if (onOutput) onOutput(text);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    kill = () => {
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
    let settled = false;
    child.on('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      journal(journalFile, { host: key, event: 'failed', exitCode: -1, outputTail: error.message });
      leaveJournal(journalFile);
      reject(error);
    });
    const finish = (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (timedOut) tail = appendTail(tail, `\n[cutover] killed after ${timeoutMs} ms timeout\n`);
      const result = { exitCode: code ?? 137, outputTail: tail, timedOut };
      const succeeded = result.exitCode === 0 && !timedOut;
      // A failure is journaled with its output too: a retry counts it against the step's attempts, and reports it
      // when it was the last one.
      journal(journalFile, { host: key, event: succeeded ? 'done' : 'failed', exitCode: result.exitCode, outputTail: request.journalOutput === false ? '' : tail });
      resolve(result);
      commit(journalFile, () => leaveJournal(journalFile));
    };
    // The command is done when its shell exits. A service it started in the background may keep the output pipes
    // open; give them a moment to drain, then stop waiting (and never kill what it left running).
    child.on('exit', (code) => {
      const grace = setTimeout(() => finish(code), PIPE_GRACE_MS);
      child.once('close', () => {
        clearTimeout(grace);
        finish(code);
      });
    });
  });
  return { done, kill: () => kill() };
}

/** Set when running as a spawner: its argument, which its worker chose at random. */
let spawnerToken;
let inherited;

/**
 * What a command inherits of this process's environment. A spawner's never changes, so it is filtered once: reading
 * process.env copies every variable out of the C environment, on each command. The worker's own (when it spawns
 * itself) is read each time.
 */
function inheritedEnvironment(withoutEnv) {
  if (!spawnerToken) return commandEnvironment(process.env, withoutEnv);
  inherited ??= commandEnvironment(process.env);
  return withoutEnv?.length ? commandEnvironment(inherited, withoutEnv) : inherited;
}

/** The spawner's side of the IPC channel: run, output and kill messages in, output and results out. */
function serve() {
  spawnerToken = process.argv[2];
  const running = new Map();
  let orphaned = false;
  // A worker killed with SIGKILL may leave the channel looking connected for a moment: a send then fails (EPIPE),
  // which must not kill the spawner while it finishes and journals the commands under way.
  const send = (message) => {
    if (process.connected) process.send(message, undefined, {}, () => {});
  };
  // Not before the journal's last ends are committed.
  const exitWhenIdle = () => {
    if (orphaned && running.size === 0 && openJournals.size === 0) process.exit(0);
  };
  journalsClosed = exitWhenIdle;
  process.on('message', (message) => {
    if (message.type === 'kill') {
      running.get(message.id)?.kill();
      return;
    }
    if (message.type !== 'run') return;
    const { id } = message;
    const onOutput = message.streamOutput ? (chunk) => send({ type: 'output', id, chunk }) : undefined;
    const handle = runCommand(message, onOutput);
    running.set(id, handle);
    handle.done.then(
      (result) => send({ type: 'result', id, result }),
      (error) => send({ type: 'error', id, message: error.message }),
    ).finally(() => {
      running.delete(id);
      exitWhenIdle();
    });
  });
  // Ctrl-C or a closed terminal reach the worker's whole process group: the worker shuts down, and the spawner
  // finishes the commands under way and journals them, as when the worker is killed (the Go spawner does the same).
  for (const signal of ['SIGINT', 'SIGHUP']) process.on(signal, () => {});
  // The worker is gone (shut down, or killed): commands under way are never killed half-way; they finish, their
  // outcome goes into the journal, and then the spawner exits.
  process.on('disconnect', () => {
    orphaned = true;
    exitWhenIdle();
  });
}

module.exports = { runCommand, commandEnvironment, appendTail, OUTPUT_TAIL_CHARS };

if (require.main === module) serve();
