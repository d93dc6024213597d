// `npm run review`: an offline security review of what would be deployed. Synthesizes the app (as
// `npm start` does) and prints, per stack:
//   - resource counts by type;
//   - the IAM matrix: each role, who may assume it, and every statement (effect, actions, resources,
//     conditions) with concrete ARNs (fake account 123456789012), plus S3 access simulated with
//     @cloud-copilot/iam-simulate per role, bucket and prefix (bucket policies applied);
//   - network exposure: ingress and egress rules, endpoints, anything public;
//   - where terraform is on PATH: an offline `terraform plan -refresh=false` summary (see
//     tools/review/offline-plan.ts for the temporary override and the local STS/EC2 stub it uses).
// Progress goes to stderr while it synthesizes, plans and simulates; the report, wrapped to the
// terminal's width (tools/review/report.ts), to stdout.
// Needs no AWS account, credentials or network. Exits 1 if a stack fails to plan.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../main';
import { ConfigError } from '../stacks/config';
import { buildSecurityModel, FAKE_ACCOUNT, networkExposure } from '../tools/review';
import { OVERRIDE_FILE, planStacks, PlanResult } from '../tools/review/offline-plan';
import { Progress } from '../tools/review/progress';
import { planLine, reportWidth, stackSection, wrapText } from '../tools/review/report';
import { readApp } from '../tools/tf-json';
import { findTerraform, terraformVersion } from './terraform';

async function run(): Promise<number> {
  const progress = new Progress();
  const width = reportWidth();
  const print = (text: string) =>
    console.log(
      text
        .split('\n')
        .flatMap((l) => wrapText(l, width, '    '))
        .join('\n'),
    );
  try {
    progress.begin('synthesizing');
    try {
      main();
    } catch (err) {
      if (err instanceof ConfigError) {
        progress.end();
        console.error(err.message);
        return 2;
      }
      throw err;
    }
    const outdir = path.resolve(process.env.CDKTF_OUTDIR ?? 'cdktf.out');
    const app = readApp(outdir);
    const stacks = Object.keys(app.stacks);
    const model = buildSecurityModel(app);
    const exposure = networkExposure(model);
    const terraform = findTerraform();
    const workroot = fs.mkdtempSync(path.join(os.tmpdir(), 'review-plan-'));
    let plans: PlanResult[] = [];
    try {
      if (terraform) {
        progress.begin('planning with terraform, offline', stacks.length);
        plans = await planStacks(app, workroot, {
          terraform,
          onProgress: (stack, step, result) => (step === 'done' ? progress.finish(stack, planLine(result)) : progress.step(stack, step)),
        });
      }
      progress.begin('simulating IAM and writing the report', stacks.length);
      const sections: string[] = [];
      for (const stack of stacks) {
        progress.step(stack, 'simulating');
        sections.push(
          await stackSection(
            model,
            stack,
            exposure,
            plans.find((p) => p.stack === stack),
            width,
          ),
        );
        progress.finish(stack, 'done');
      }
      progress.end();

      print(`Security review of ${path.relative(process.cwd(), outdir) || outdir} (offline; ARNs use the fake account ${FAKE_ACCOUNT}, shown as "::")`);
      if (terraform) {
        print(`Plans: ${terraformVersion(terraform)}, terraform plan -refresh=false on a copy of each stack with a temporary ${OVERRIDE_FILE}`);
        print('       (local backend, fake keys, skip_credentials_validation/skip_requesting_account_id/skip_metadata_api_check,');
        print('        STS/EC2 data sources answered by a stub on 127.0.0.1, upstream stack outputs from the synthesized JSON)');
      } else {
        print('Plans: terraform is not on PATH; plans skipped');
      }
      for (const section of sections) console.log(section);

      const publicItems = exposure.filter((e) => e.public);
      print(
        `\n=== summary: ${stacks.length} stacks, ${model.roles.length} IAM roles, ${model.buckets.length} buckets, ${publicItems.length} public exposure item(s)`,
      );
      for (const e of publicItems) print(`  PUBLIC ${e.stack}: ${e.detail}`);
      const failed = plans.filter((p) => p.status === 'failed');
      for (const p of failed) print(`  PLAN FAILED ${p.stack}: ${p.reason}`);
      return failed.length ? 1 : 0;
    } finally {
      fs.rmSync(workroot, { recursive: true, force: true });
    }
  } finally {
    progress.end();
  }
}

run().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
