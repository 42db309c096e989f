// Lint rules that catch what the type checker does not: promises nobody awaits or handles (a
// rejected one is an unhandled rejection, or an error silently lost), promises passed where a
// callback's result is ignored, and code nobody uses.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'coverage/**'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      'no-unused-private-class-members': 'error',
      // Rules the code base deliberately does not follow (reasons in docs/decisions.md, "Lint").
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-control-regex': 'off',
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    // Solid assigns `ref={el}` variables itself; ESLint cannot see that.
    files: ['client/**/*.tsx'],
    rules: { 'no-unassigned-vars': 'off' },
  },
);
