// The app's one typed configuration (see settings.ts for the table, load.ts for loadConfig).
export * from './cidr';
export { isProductionStage, loadConfig, type LoadConfigOptions } from './load';
export * from './names';
export { regionProblem, AWS_REGIONS } from './regions';
export { scheduleProblem } from './schedule';
export { ConfigError, SETTINGS, settingError, settingsTable, type SettingName, type SettingSpec } from './settings';
export * from './types';
