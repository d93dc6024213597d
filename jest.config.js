/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.check.json' }] },
  // Real servers, container builds and terraform run inside the suite: generous timeouts.
  testTimeout: 120000,
  // 2 cores here; servers per test file, so keep files from starving each other.
  maxWorkers: 2,
};
