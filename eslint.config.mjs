// Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O modules.
import tseslint from 'typescript-eslint';

const nodeOnly = ['node:*', 'fs', 'fs/*', 'path', 'child_process', 'os', 'net', 'http', 'https', 'crypto', 'process', 'events', 'stream', 'timers', 'util', 'readline'];

export default tseslint.config(
  { ignores: ['node_modules/**', '.cutover/**', 'bin/**', 'scripts/**', 'eslint.config.mjs', 'vitest.config.ts'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The spawner is plain CommonJS Node (transport/commandRunner.cjs): linted, without type information.
    files: ['**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly' } },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['workflows/**/*.ts', 'core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: nodeOnly, message: 'Workflow and core code must stay deterministic and free of Node I/O.' },
          { group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity', '**/activities/*', '**/transport/*', '**/lab/*'], allowTypeImports: true, message: 'Workflows import activities with `import type` only.' },
        ],
      }],
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: nodeOnly, message: 'core/ is pure.' },
          { group: ['@temporalio/*', '**/activities/*', '**/transport/*', '**/lab/*'], message: 'core/ has no Temporal imports: it is shared by workflows, client and worker.' },
        ],
      }],
    },
  },
);
