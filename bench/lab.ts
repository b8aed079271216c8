/** The lab fleet as the benchmark uses it: the environment its commands need, and a check of where it ended up. */
import { LAB_BIN, labStatus } from '../lab/lab';

/** What every leg's commands run with: labhost on PATH (as the worker puts it) and the lab's directory. */
export function labEnv(labDir: string): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${LAB_BIN}:${process.env.PATH ?? ''}`, CUTOVER_LAB_DIR: labDir };
}

/** "ok: …" when every host is at the target, running and online with the schema upgraded; else what is not. */
export function checkLab(labDir: string, target: string): string {
  const status = labStatus(labDir);
  const wrong = status.hosts.filter((h) => h.version !== target || !Object.values(h.services).every((s) => s === 'running') || !h.online);
  const problems = [
    ...wrong.slice(0, 5).map((h) => `${h.id} at ${h.version}, services ${JSON.stringify(h.services)}, ${h.online ? 'online' : 'offline'}`),
    ...(wrong.length > 5 ? [`… ${wrong.length - 5} more hosts`] : []),
    ...(status.database.schema !== target ? [`database schema ${status.database.schema}`] : []),
  ];
  return problems.length === 0
    ? `ok: all ${status.hosts.length} hosts at ${target}, services running, online; schema ${target}`
    : `NOT upgraded: ${problems.join('; ')}`;
}
