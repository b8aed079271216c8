/**
 * The workflow code, bundled one way for all: at install (build/build.ts), by a worker at start, by the tests; and
 * which prebuilt bundle fits a worker, the question the worker and the tests both ask.
 */
import { join } from 'node:path';
import { type BundleOptions, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../codec/dataConverter';
import { PROJECT_ROOT } from '../projectRoot';
import { freshBuild } from './layout.cjs';

export const WORKFLOWS_PATH = join(PROJECT_ROOT, 'workflows', 'index.ts');

/** Warnings and errors only: webpack's progress is noise in a build's or a test's output. */
export const quietLogger = { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } as never;

/**
 * The source map without the sources' text: a workflow's stack trace still names the file and line, and the worker
 * holds 25 MiB less and starts 0.1 s sooner (docs/benchmarks.md, *A lean worker*). The SDK's default inlines the
 * sources, which only the stack trace query's showStackTraceSources (not set here) reads.
 */
const withoutSources: WebpackConfigHook = (config) => ({ ...config, devtool: 'inline-nosources-source-map' });

/**
 * Our TypeScript compiled for the Node the worker runs (ES2022), not the SDK's ES2017: at ES2017 swc turns every
 * object spread into a helper call, and at 10,000 hosts the workflow spent seconds in them (docs/benchmarks.md,
 * *The workflow task at 10,000 hosts*). Only swc-loader's target changes; the code's meaning does not.
 */
const forNode: WebpackConfigHook = (config) => {
  let rewritten = 0;
  const rules = config.module?.rules?.map((rule) => {
    const target = withSwcTarget(rule, 'es2022');
    if (target !== rule) rewritten++;
    return target;
  });
  // The SDK compiles our TypeScript with one swc-loader rule; should that change, say so rather than bundle at ES2017.
  if (rewritten !== 1) throw new Error(`build/prebuilt.ts: expected one swc-loader rule in the SDK's webpack configuration, found ${rewritten}`);
  return { ...config, module: { ...config.module, rules } };
};

/** How the workflow code is bundled, at install and by a worker or a test that bundles at start. */
export const workflowWebpackConfig: WebpackConfigHook = (config) => forNode(withoutSources(config));

type WebpackConfigHook = NonNullable<BundleOptions['webpackConfigHook']>;
type WebpackRule = NonNullable<NonNullable<Parameters<WebpackConfigHook>[0]['module']>['rules']>[number];

/** The rule with swc-loader's jsc.target set; any other rule as it is. */
function withSwcTarget(rule: WebpackRule, target: string): WebpackRule {
  const use = rule && typeof rule === 'object' ? rule.use : undefined;
  if (!use || typeof use !== 'object' || Array.isArray(use) || !use.loader?.includes('swc-loader')) return rule;
  const options = (use.options ?? {}) as { jsc?: object };
  return { ...(rule as object), use: { ...use, options: { ...options, jsc: { ...options.jsc, target } } } };
}

/** workflows/ bundled now, with the data converter's failure converter when it has one (the codec's). */
export function bundleWorkflows(failureConverterPath?: string): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: quietLogger,
    webpackConfigHook: workflowWebpackConfig,
    ...(failureConverterPath ? { failureConverterPath } : {}),
  });
}

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
