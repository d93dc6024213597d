// ESLint (flat config) with typescript-eslint. `npm run lint`. Type checking itself is tsc's job
// (`npm run typecheck`); rules that repeat it are off. Production code (the stacks, main.ts, the images'
// sources, tools/ and scripts/) may not use an explicit `any`; tests may, to reach into synthesized JSON.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

const node = {
  require: 'readonly',
  module: 'writable',
  exports: 'writable',
  process: 'readonly',
  __dirname: 'readonly',
  console: 'readonly',
  Buffer: 'readonly',
};

export default defineConfig(
  { ignores: ['**/node_modules/**', '**/dist/**', 'cdktf.out/**', '.gen/**', 'coverage/**', '__tests__/fixtures/xml-corpus/**'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  { languageOptions: { globals: node, sourceType: 'commonjs' } },
  {
    // CommonJS files (jest.config.js, scripts/install-images.js, the probe image) load with require().
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // tsc (noUnusedLocals/noUnusedParameters) reports these already.
      '@typescript-eslint/no-unused-vars': 'off',
    },
  },
  {
    files: ['main.ts', 'stacks/**/*.ts', 'images/*/src/**/*.ts', 'tools/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'error' },
  },
  {
    files: ['__tests__/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
