/** Templates filled in for one host: commands, undos and probes, and the one-line description of a probe. */
import { ownValue } from './names';
import type { Probe, StepCommand } from './schema';

export interface TemplateValues {
  host?: string;
  fleet: string;
  source: string;
  target: string;
  /** The version the host should be at: the target while upgrading, the source while rolling back. */
  version: string;
  backup: string;
  /** The database a host should point at: the new one while upgrading, the previous one while rolling back. */
  database: string;
  /** The database the hosts used before the upgrade (a new-database upgrade's old one; else the same as database). */
  previousDatabase: string;
}

/**
 * Every value is a SafeId or Version, so substitution cannot break out of the shell word it lands in. Keys are read
 * as own properties: `{{constructor}}` is no template. The regex is linear: blanks and word characters never overlap.
 */
export function renderCommand(template: string, values: TemplateValues): string {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, key: string) => {
    const value = ownValue(values as unknown as Record<string, string | undefined>, key);
    return value ?? whole;
  });
}

export const TEMPLATE_KEYS = ['host', 'fleet', 'source', 'target', 'version', 'backup', 'database', 'previousDatabase'] as const;

/** Every templated text of a probe with its path inside the probe: what the validator checks and the planner renders. */
export function probeTexts(probe: Probe): [(string | number)[], string][] {
  if (probe.kind === 'tcp') return [[['address'], probe.address]];
  return [
    [['url'], probe.url],
    ...Object.entries(probe.headers).map(([name, value]): [(string | number)[], string] => [['headers', name], value]),
    ...Object.entries(probe.json ?? {}).flatMap(([path, value]): [(string | number)[], string][] => (typeof value === 'string' ? [[['json', path], value]] : [])),
  ];
}

/** The probe with the plan's templates filled in; {{secret:...}} stays for the worker to resolve. */
export function renderProbe(probe: Probe, values: TemplateValues): Probe {
  const render = (text: string) => renderCommand(text, values);
  if (probe.kind === 'tcp') return { ...probe, address: render(probe.address) };
  return {
    ...probe,
    url: render(probe.url),
    headers: Object.fromEntries(Object.entries(probe.headers).map(([name, value]) => [name, render(value)])),
    ...(probe.json ? { json: Object.fromEntries(Object.entries(probe.json).map(([path, value]) => [path, typeof value === 'string' ? render(value) : value])) } : {}),
  };
}

/** One readable line for previews, the UI and the status: what the probe checks. Header values are not shown. */
export function describeProbe(probe: Probe): string {
  if (probe.kind === 'tcp') return `tcp connect ${probe.address}:${probe.port} within ${probe.deadline}`;
  const statuses = Array.isArray(probe.status) ? probe.status.join('|') : String(probe.status);
  const fields = Object.entries(probe.json ?? {}).map(([path, value]) => ` ${path}=${JSON.stringify(value)}`).join(',');
  const tls = probe.url.startsWith('https:') ? (probe.insecureSkipTlsVerify ? ' (TLS NOT verified)' : probe.ca ? ` (TLS verified with ${probe.ca})` : '') : '';
  return `http ${probe.method} ${probe.url} expect ${statuses}${fields}${tls} within ${probe.deadline}`;
}

/** A host step's command or probe, rendered for one host: the probe travels as data, `command` describes it. */
export function renderStep(definition: StepCommand, values: TemplateValues): { command: string; probe?: Probe } {
  if ('probe' in definition && definition.probe) {
    const probe = renderProbe(definition.probe, values);
    return { command: describeProbe(probe), probe };
  }
  return { command: renderCommand(definition.run as string, values) };
}
