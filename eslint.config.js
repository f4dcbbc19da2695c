import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'fixtures/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    // What the bundle carries is parsed at every start of the engine (the boundary's setup).
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportDeclaration[source.value='zod'] > ImportSpecifier[imported.name='z']",
          message: "import * as z from 'zod': the named z keeps zod's every locale in the bundle",
        },
      ],
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          name: 'undici',
          allowTypeImports: true,
          message: "the engine loads undici's parts by file (src/types/undici-parts.d.ts)",
        },
      ],
    },
  },
);
