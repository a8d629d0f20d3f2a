// Lint: typescript-eslint's recommended rules, the rules that catch a promise
// nobody waits for, and the layout's boundaries (README "Architecture"):
// master code never imports worker code and the reverse, shared code imports
// neither, and only src/node/ touches Node's internals.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** An import pattern set that keeps one folder from reaching into others. */
const forbid = (folders, message) => ({
  'no-restricted-imports': ['error', { patterns: [{ group: folders.flatMap((folder) => [`**/${folder}/*`, `**/${folder}/**`, `**/${folder}.js`]), message }] }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'coverage/**', '.tap/**', 'node_modules/**', 'examples/**/node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // tap runs the subtests a file declares (t.test returns a promise tap itself awaits).
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafePromises: [{ from: 'package', package: '@tapjs/core', name: 'PromiseWithSubtest' }] }],
    },
  },
  { files: ['src/master/**/*.ts'], rules: forbid(['worker'], 'The master never imports worker code: what both need lives in src/shared/.') },
  { files: ['src/worker/**/*.ts'], rules: forbid(['master'], 'A worker never imports master code: what both need lives in src/shared/.') },
  { files: ['src/shared/**/*.ts'], rules: forbid(['master', 'worker'], 'src/shared/ runs in both processes: it imports neither side.') },
  {
    files: ['src/**/*.ts', 'workers/**/*.ts'],
    ignores: ['src/node/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'binding', message: "Node's internals are reached through src/node/ only." }],
      'no-restricted-syntax': [
        'error',
        { selector: 'MemberExpression[property.name=/^_[a-zA-Z]/]', message: "Node's internals (`_`-prefixed members) are reached through src/node/ only." },
        { selector: "CallExpression[callee.name='internalBinding']", message: "Node's internals are reached through src/node/ only." },
      ],
    },
  },
);
