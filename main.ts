// The cdktf app: reads the configuration (environment, cdktf context) and synthesizes every stack
// into cdktf.out/. Run by `cdktf synth|diff|deploy` (cdktf.json "app") and by `npm start`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'cdktf';
import { buildInfrastructure } from './stacks/app';
import { ConfigError, loadConfig } from './stacks/config';

/**
 * cdktf passes cdktf.json's context in CDKTF_CONTEXT_JSON; plain `node dist/main.js` reads the file itself.
 * A file that is not valid JSON fails with its path, line and column.
 */
export function fileContext(file = path.join(process.cwd(), 'cdktf.json')): Record<string, unknown> {
  if (process.env.CDKTF_CONTEXT_JSON) return {};
  if (!fs.existsSync(file)) return {};
  const text = fs.readFileSync(file, 'utf8');
  let json: { context?: unknown };
  try {
    json = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const position = /position (\d+)/.exec(message);
    const before = position ? text.slice(0, Number(position[1])).split('\n') : undefined;
    const where = before ? `:${before.length}:${before[before.length - 1].length + 1}` : '';
    throw new ConfigError(`${file}${where}: not valid JSON: ${message}`);
  }
  if (json.context === undefined) return {};
  if (typeof json.context !== 'object' || json.context === null || Array.isArray(json.context)) {
    throw new ConfigError(`${file}: "context" must be an object of settings (see README, Configuration)`);
  }
  return json.context as Record<string, unknown>;
}

export function main(): void {
  // No construct stack traces in the metadata: they cost ~15% of synth time and help no one reading the plan.
  const app = new App({ context: fileContext() as Record<string, string>, stackTraces: false });
  const config = loadConfig({ context: app.node.getAllContext() });
  buildInfrastructure(app, config);
  app.synth();
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}
