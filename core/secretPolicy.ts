/**
 * What a plan may reference is the worker's decision, not the plan's: a plan that names `{{secret:env:TEMPORAL_API_KEY}}`
 * or the worker's own key file would have the worker hand it over. The trust file's `secrets` allowlist says which
 * variables and directories a plan may use; without one, the worker's own settings and files are still refused.
 * Checked in the workflow before preflight runs any command. Pure.
 */
import { type SecretRef, parseSecretRef, secretRefText, secretTemplates } from './secrets';
import { type TrustPolicy, secretAllowed } from './trust';

type Path = (string | number)[];

/** Variables of the worker that no plan may read, whatever the trust file says: its connection and its keys. */
const WORKER_ENV = [/^TEMPORAL_/, /^CUTOVER_TRUST_FILE$/, /^CUTOVER_KEY$/, /^CUTOVER_CODEC_/];

/** Every secret a plan names, with where: templates in any text, the ssh transports' key and passphrase, webhooks' URLs. */
export function planSecrets(value: unknown, path: Path = []): { path: Path; ref: SecretRef }[] {
  if (typeof value === 'string') {
    const field = path[path.length - 1];
    const inTransport = path.includes('transport') && (field === 'key' || field === 'passphrase');
    const webhook = path[0] === 'notify' && field === 'url';
    const direct = inTransport || webhook ? parseSecretRef(value) : undefined;
    if (direct?.ok) return [{ path, ref: direct.ref }];
    return secretTemplates(value).map((ref) => ({ path, ref }));
  }
  if (Array.isArray(value)) return value.flatMap((item, index) => planSecrets(item, [...path, index]));
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([key, item]) => planSecrets(item, [...path, key]));
  return [];
}

/** The process's own files: /proc/self/environ alone would hand over every variable refused above. */
const PROCESS_FILES = ['/proc', '/sys', '/dev'];

/** The path as the kernel reads it ("//", "/./" and ".." resolved), so no other spelling passes a comparison. */
export function normalPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '' && part !== '.') parts.push(part);
  }
  return `/${parts.join('/')}`;
}

function refuseWorkerFile(path: string, workerFiles: readonly string[]): string | undefined {
  const normal = normalPath(path);
  if (PROCESS_FILES.some((dir) => normal === dir || normal.startsWith(`${dir}/`))) return `file:${path} is a file of the worker's processes, never a plan's secret`;
  if (workerFiles.some((file) => normalPath(file) === normal)) return `file:${path} is one of the worker's own files, never a plan's secret`;
  return undefined;
}

/** Why this worker refuses to resolve the secret for a plan, or undefined when it may. */
export function refuseSecret(policy: TrustPolicy, ref: SecretRef, workerFiles: readonly string[]): string | undefined {
  if (ref.source === 'env' && WORKER_ENV.some((pattern) => pattern.test(ref.name))) return `env:${ref.name} is the worker's own setting, never a plan's secret`;
  const own = ref.source === 'file' ? refuseWorkerFile(ref.path, workerFiles) : undefined;
  return own ?? (policy.file.secrets ? secretAllowed(policy, ref) : undefined);
}

/** Every secret the plan may not use, one line each with its path; undefined when there is none. */
export function secretRefusals(plan: unknown, policy: TrustPolicy, workerFiles: readonly string[]): string | undefined {
  const refused = planSecrets(plan).flatMap(({ path, ref }) => {
    const reason = refuseSecret(policy, ref, workerFiles);
    return reason ? [`✖ ${secretRefText(ref)}: ${reason}\n  → at ${path.join('.')}`] : [];
  });
  return refused.length > 0 ? refused.join('\n') : undefined;
}
