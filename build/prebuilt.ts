/** Which prebuilt workflow bundle (build/build.ts) fits a worker: the worker and the tests ask the same question. */
import { FAILURE_CONVERTER_PATH } from '../codec/dataConverter';
import { freshBuild } from './layout.cjs';

/**
 * The path of the workflow bundle built for this failure converter (none, or the codec's), while the build is fresh;
 * undefined otherwise (no build, sources changed since, or a converter the build did not bundle): then bundle now.
 */
export function prebuiltWorkflowBundle(failureConverterPath?: string): string | undefined {
  if (failureConverterPath !== undefined && failureConverterPath !== FAILURE_CONVERTER_PATH) return undefined;
  const build = freshBuild();
  if (!build) return undefined;
  return failureConverterPath ? build.workflowsEncrypted : build.workflows;
}
