/**
 * `npm run campaign`: the randomized SFTP ingest fault campaign (issue 11) against a non-root OpenSSH
 * sshd (or ProFTPD mod_sftp: CAMPAIGN_SERVER=proftpd) and the S3 stand-in on 127.0.0.1.
 * CAMPAIGN_SEED (default: random, printed) and CAMPAIGN_ROUNDS (default 40) choose the run;
 * CAMPAIGN_LISTER_MAIN runs another build of the lister (e.g. an older commit's dist/main.js, to see
 * what the campaign finds there). Exits 1 when an invariant is violated (each printed with its round).
 */
import { campaignSettings, formatReport, runCampaign } from '../tools/servers/sftp-campaign';
import { startS3 } from '../tools/servers/s3';
import { startSshd } from '../tools/servers/sshd';
import { startProftpd } from '../tools/servers/sftp-proftpd';

// Servers with in-place writes and a session folder at a real path (the object store has neither).
const SERVERS = { openssh: startSshd, proftpd: startProftpd };

async function main(): Promise<number> {
  let settings: { seed: number; rounds: number };
  try {
    settings = campaignSettings();
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const { seed, rounds } = settings;
  const server = process.env.CAMPAIGN_SERVER || 'openssh';
  if (!(server in SERVERS)) {
    console.error(`CAMPAIGN_SERVER must be one of ${Object.keys(SERVERS).join(', ')}, got ${JSON.stringify(server)}`);
    return 2;
  }
  console.log(`campaign seed=${seed} rounds=${rounds} server=${server}`);
  const bucket = 'campaign';
  const sftp = await SERVERS[server as keyof typeof SERVERS]();
  const s3 = await startS3([bucket]).catch(async (e) => {
    await sftp.stop();
    throw e;
  });
  try {
    const campaign = await runCampaign({
      seed,
      rounds,
      sftp,
      s3,
      bucket,
      log: (l) => console.log(l),
      listerMain: process.env.CAMPAIGN_LISTER_MAIN || undefined,
    });
    campaign.close();
    console.log(formatReport(campaign.report));
    return campaign.report.violations.length ? 1 : 0;
  } finally {
    await Promise.all([sftp.stop(), s3.dispose()]);
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
