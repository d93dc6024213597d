// The unit project's short timeout (jest.config.js). Jest reads `testTimeout` from the global config
// only, so the unit project sets its own here, before its tests are defined.
jest.setTimeout(10_000);
