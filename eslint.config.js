import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'data/**',
      'infra/local/.state/**',
      'infra/local/.cache/**',
      'bench/results/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['**/*.{js,mjs}'],
    languageOptions: { globals: globals.node },
  },
  {
    // The domain is pure: no drivers, no I/O, no Node built-ins (Emmett's rule).
    files: ['domain/src/**/*.ts'],
    ignores: ['domain/src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'domain/ is pure: no Node built-ins' },
            {
              group: [
                'fs',
                'path',
                'crypto',
                'http',
                'https',
                'net',
                'os',
                'child_process',
                'events',
                'stream',
                'url',
                'util',
                'pg',
                'kafkajs',
                'mongodb',
                'ioredis',
                '@electric-sql/*',
                '@eventstore/*',
                '@grpc/*',
                'fastify',
                'mercurius',
                'undici',
                'pino',
                '@settle/platform',
                '@settle/*',
              ],
              message: 'domain/ is pure: no drivers, no I/O, no other workspace',
            },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'Buffer', 'fetch', 'setTimeout', 'setInterval', 'require'],
    },
  },
);
