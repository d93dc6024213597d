/**
 * Two projects. `npm test` (and scripts/test.sh, CI) runs both; `npm run test:unit` only the fast one.
 * - unit: pure code and synthesized Terraform read back in-process; a short timeout keeps it fast
 *   (a new test file lands here by default: if it needs a server it will say so by timing out).
 * - integration: real servers (sshd, ProFTPD, the S3 stand-in), child processes, container builds
 *   (buildah), terraform, the strict local Step Functions run.
 * @type {import('jest').Config}
 */
const INTEGRATION = [
  'batch', // terraform validate
  'container-harness',
  'converter-adversarial', // the converter CLI in child processes, up to 560 MB through stdin
  'converter-cli',
  'converter-container',
  'converter-s3',
  'ingest', // terraform validate
  'local-pipeline',
  'local-sfn-[^/]*',
  'metrics-[^/]*', // runs both images
  'prerequisites', // npm run local in a child process
  'monitoring[^/]*', // terraform validate
  's3-standin',
  'sftp-[^/]*',
  'smoke-verify',
  'support',
  'security/failure-drill',
  'security/secret-leak',
  'stacks/app', // terraform validate of every stack
  'stacks/bundle', // esbuild bundle + a synth in a child process
  'stacks/images-build-id', // terraform apply
  'stacks/start', // npm start
  'stacks/terraform-test',
];
const integrationPattern = `/__tests__/(${INTEGRATION.join('|')})\\.test\\.ts$`;

const common = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.check.json' }] },
};

module.exports = {
  // 2 cores here; servers per test file, so keep files from starving each other.
  maxWorkers: 2,
  // Jest applies testTimeout from the global config only: the integration project's generous one (real
  // servers, container builds, terraform); the unit project shortens it (__tests__/unit-timeout.ts).
  testTimeout: 120000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', integrationPattern],
      setupFilesAfterEnv: ['<rootDir>/__tests__/unit-timeout.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testRegex: [integrationPattern],
    },
  ],
};
