/**
 * `npm run campaign`: the randomized SFTP ingest fault campaign (issue 11) against a non-root OpenSSH
 * sshd and the S3 stand-in on 127.0.0.1. CAMPAIGN_SEED (default: random, printed) and CAMPAIGN_ROUNDS
 * (default 40) choose the run; CAMPAIGN_LISTER_MAIN runs another build of the lister (e.g. an older
 * commit's dist/main.js, to see what the campaign finds there). Exits 1 when an invariant is violated (each printed with its round).
 */
import * as crypto from 'node:crypto';
import { formatReport, runCampaign } from '../__tests__/support/sftp-campaign';
import { startListerServers } from '../__tests__/support/lister-harness';

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) {
    console.error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return Number(raw);
}

async function main(): Promise<number> {
  const seed = intFromEnv('CAMPAIGN_SEED', crypto.randomInt(2 ** 31));
  const rounds = intFromEnv('CAMPAIGN_ROUNDS', 40);
  console.log(`campaign seed=${seed} rounds=${rounds}`);
  const bucket = 'campaign';
  const servers = await startListerServers(bucket);
  try {
    const campaign = await runCampaign({ seed, rounds, sftp: servers.sftp, s3: servers.s3, bucket, log: (l) => console.log(l), listerMain: process.env.CAMPAIGN_LISTER_MAIN || undefined });
    campaign.close();
    console.log(formatReport(campaign.report));
    return campaign.report.violations.length ? 1 : 0;
  } finally {
    await servers.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
