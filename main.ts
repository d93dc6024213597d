// The cdktf app: reads the configuration (environment, cdktf context) and synthesizes every stack
// into cdktf.out/. Run by `cdktf synth|diff|deploy` (cdktf.json "app") and by `npm start`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'cdktf';
import { buildInfrastructure } from './stacks/app';
import { ConfigError, loadConfig } from './stacks/config';

/** cdktf passes cdktf.json's context in CDKTF_CONTEXT_JSON; plain `node dist/main.js` reads the file itself. */
function fileContext(): Record<string, unknown> {
  if (process.env.CDKTF_CONTEXT_JSON) return {};
  const file = path.join(process.cwd(), 'cdktf.json');
  if (!fs.existsSync(file)) return {};
  return (JSON.parse(fs.readFileSync(file, 'utf8')).context as Record<string, unknown> | undefined) ?? {};
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
