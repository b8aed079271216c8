export interface BuildLayout {
  dir: string;
  js: string;
  cli: string;
  /** V8's code cache of what one `cutover` command loads (build/codeCache.cjs). */
  codeCache(command: string | undefined): string;
  workflows: string;
  workflowsEncrypted: string;
  stamp: string;
}
export const ROOT: string;
export const BUILD_DIR: string;
export const GO_SPAWNER_DIR: string;
export function buildLayout(dir?: string): BuildLayout;
export function sourceFiles(root?: string): string[];
export function sourceStamp(root?: string): string;
export function freshBuild(root?: string): BuildLayout | undefined;
export function goSpawnerProgram(root?: string): string | undefined;
