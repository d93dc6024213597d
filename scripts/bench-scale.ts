/**
 * `npm run bench:scale` (issue 15): one scheduled run of 10,000 small files, measured end to end.
 *  1. The lister alone against the real servers (OpenSSH sshd, S3 stand-in on 127.0.0.1): files per
 *     second, S3 requests per file, peak RSS; side by side with OpenSSH's own `sftp -b` fetching the
 *     same files to local disk (the anchor: what the SFTP server and the link allow a client).
 *  2. The same files through the strict local run of the synthesized state machine (tools/local-sfn: the
 *     real lister and converter processes, every call authorized as its role, every state held to
 *     256 KiB): converter tasks started, state transitions (states entered, child executions of
 *     Distributed Maps included, as Step Functions bills them), the largest state input or output,
 *     wall time, and whether every key was converted.
 * docs/scale.md takes its inputs from these figures.
 * Options (env): BENCH_FILES (10000), BENCH_MIN_KB (1), BENCH_MAX_KB (100), BENCH_ONLY (lister | pipeline: one half).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { imageNode } from '../tools/servers/image-runtime';
import { LISTER_MAIN, listerEnv, runLister, startListerServers } from '../tools/servers/lister-harness';
import { type SftpServer, sftpClientArgs } from '../tools/servers/sshd';
import { byteSize } from '../tools/local-sfn/limits';
import type { Json } from '../tools/local-sfn/json';

const FILES = positive('BENCH_FILES', 10_000);
const MIN_KB = positive('BENCH_MIN_KB', 1);
const MAX_KB = Math.max(MIN_KB, positive('BENCH_MAX_KB', 100));

function positive(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a whole number >= 1, got '${v}'`);
  return Number(v);
}

/** File i: a small XML record of a size spread evenly over MIN_KB..MAX_KB (deterministic). */
function record(i: number): string {
  const kb = MIN_KB + ((i * 7919) % (MAX_KB - MIN_KB + 1));
  const head = `<record><id>${i}</id><body>`;
  const tail = '</body></record>\n';
  return head + 'x'.repeat(Math.max(0, kb * 1024 - head.length - tail.length)) + tail;
}

/** Writes the files under `dir`, dated an hour ago; returns their total bytes. */
function seed(dir: string, names: readonly string[]): number {
  fs.mkdirSync(dir, { recursive: true });
  const when = new Date(Date.now() - 3600_000);
  let bytes = 0;
  names.forEach((name, i) => {
    const body = record(i);
    const file = path.join(dir, name);
    fs.writeFileSync(file, body);
    fs.utimesSync(file, when, when);
    bytes += body.length;
  });
  return bytes;
}

/** `/usr/bin/time` prefix that reports a process's CPU seconds (user + system, its waited-for children included). */
const TIME = ['/usr/bin/time', '-f', 'cpu_seconds=%U+%S'];
function cpuSeconds(stderr: string): number {
  const m = /cpu_seconds=([\d.]+)\+([\d.]+)/.exec(stderr);
  return m ? Number(m[1]) + Number(m[2]) : NaN;
}

/** OpenSSH's client fetching every file of `remoteDir` into a fresh local folder, in one session: wall and CPU seconds. */
function opensshGet(sftp: SftpServer, remoteDir: string): { seconds: number; cpu: number } {
  const knownHosts = path.join(path.dirname(sftp.privateKeyFile), 'known_hosts_bench_scale');
  fs.writeFileSync(knownHosts, execFileSync('ssh-keyscan', ['-p', String(sftp.port), '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const into = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-get-'));
  try {
    const t = performance.now();
    const [cmd, ...args] = TIME;
    const r = spawnSync(cmd, [...args, 'sftp', ...sftpClientArgs(sftp, knownHosts, { quiet: true })], {
      input: `get ${remoteDir}/* ${into}/\n`,
      stdio: ['pipe', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    const seconds = (performance.now() - t) / 1000;
    if (r.status !== 0) throw new Error(`sftp -b exited ${r.status}: ${r.stderr}`);
    const got = fs.readdirSync(into).length;
    if (got !== FILES) throw new Error(`sftp -b fetched ${got} files, expected ${FILES}`);
    return { seconds, cpu: cpuSeconds(r.stderr) };
  } finally {
    fs.rmSync(into, { recursive: true, force: true });
  }
}

interface ListerFigures {
  listerSeconds: number;
  transferFilesPerSecond: number;
  requestsPerFile: number;
  perFileRequests: number;
  perRunRequests: number;
  peakRssMiB: number;
  listerCpu: number;
  opensshSeconds: number;
  opensshCpu: number;
  bytes: number;
}

async function listerVsOpenssh(names: readonly string[]): Promise<ListerFigures> {
  const servers = await startListerServers('bench');
  try {
    const { sftp, s3 } = servers;
    const bytes = seed(path.join(sftp.root, 'scale'), names);
    // OpenSSH first: both then read from the same (warm) page cache.
    const openssh = opensshGet(sftp, 'scale');
    s3.clearRequests();
    const r = await runLister(
      listerEnv(sftp, s3, 'bench', { SFTP_REMOTE_DIR: 'scale', DEST_PREFIX: 'scale/', MANIFEST_KEY: 'manifests/bench.json', RETRY_BASE_MS: undefined }),
      {
        command: [...TIME, ...imageNode('sftp-lister'), LISTER_MAIN],
      },
    );
    const s = r.summary;
    if (r.code !== 0 || !s || s.ingested !== FILES) throw new Error(`lister run failed (exit ${r.code}): ${JSON.stringify(s)}\n${r.stderr.slice(-2000)}`);
    const requests = s3.requests();
    const perFile = requests.filter((q) => q.key?.startsWith('scale/')).length;
    const transferSeconds = s.seconds - s.connectSeconds - s.decideSeconds;
    return {
      listerSeconds: s.seconds,
      transferFilesPerSecond: FILES / transferSeconds,
      requestsPerFile: requests.length / FILES,
      perFileRequests: perFile / FILES,
      perRunRequests: requests.length - perFile,
      peakRssMiB: s.maxRssMB,
      listerCpu: cpuSeconds(r.stderr),
      opensshSeconds: openssh.seconds,
      opensshCpu: openssh.cpu,
      bytes,
    };
  } finally {
    await servers.stop();
  }
}

/** Counts every state entered and the largest state input/output, by wrapping the interpreter's event logger. */
function countTransitions(): { transitions: number; largestPayload: number; largestState: string } {
  const stats = { transitions: 0, largestPayload: 0, largestState: '' };
  type Logger = { dispatchStateEnteredEvent(n: string, t: string, i: Json): void; dispatchStateExitedEvent(n: string, t: string, i: Json, o: Json): void };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { StateMachine } = require('aws-local-stepfunctions') as { StateMachine: { prototype: object } };
  const proto = StateMachine.prototype as {
    execute: (input: Json, options: { eventLogger: Logger; runOptions?: { localUnchecked?: boolean } }, cleanup: () => void) => Promise<Json>;
  };
  const original = proto.execute;
  const seen = (name: string, value: Json) => {
    const size = byteSize(value);
    if (size > stats.largestPayload) Object.assign(stats, { largestPayload: size, largestState: name });
  };
  proto.execute = function counted(this: unknown, input, options, cleanup) {
    // The runner's own evaluations (ItemSelector over the items read) are no states of the workflow.
    if (!options.runOptions?.localUnchecked) {
      const logger = options.eventLogger;
      const entered = logger.dispatchStateEnteredEvent.bind(logger);
      const exited = logger.dispatchStateExitedEvent.bind(logger);
      logger.dispatchStateEnteredEvent = (name, type, stateInput) => {
        stats.transitions++;
        seen(name, stateInput);
        entered(name, type, stateInput);
      };
      logger.dispatchStateExitedEvent = (name, type, stateInput, output) => {
        seen(name, output);
        exited(name, type, stateInput, output);
      };
    }
    return original.call(this, input, options, cleanup);
  };
  return stats;
}

interface PipelineFigures {
  seconds: number;
  status: string;
  converted: number;
  converterTasks: number;
  listerSeconds?: number;
  transitions: number;
  largestPayload: number;
  largestState: string;
}

async function pipelineRun(names: readonly string[]): Promise<PipelineFigures> {
  // Loaded here: the lister half needs none of the stacks.
  const { openSession, outcomes, synthesize } = await import('./local-pipeline');
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-synth-'));
  try {
    synthesize(outdir, process.env.LOCAL_IMAGES_DIR);
    const session = await openSession(outdir);
    try {
      const { world } = session;
      const containers = session.synthesized.taskDefinitions.flatMap((t) => t.containers);
      const maxFiles = Number(containers.find((c) => c.name === 'sftp-lister')?.environment.MAX_FILES);
      if (maxFiles < FILES) throw new Error(`the synthesized lister takes ${maxFiles} files per run (MAX_FILES), fewer than the ${FILES} of this benchmark`);
      seed(world.sftp.root, names);
      const stats = countTransitions();
      const t = performance.now();
      const run = await session.pipeline.execute({ ingest: {} }, 'bench-scale');
      const seconds = (performance.now() - t) / 1000;
      const results = run.status === 'SUCCEEDED' ? await outcomes(world, run.output) : [];
      const tasks = world.tasks.filter((task) => task.execution === run.arn);
      const listerTask = tasks.find((task) => task.container === 'sftp-lister');
      const listerSummary = listerTask ? (JSON.parse(listerTask.stdout.trim().split('\n').pop() ?? '{}') as { seconds?: number }) : {};
      if (run.status !== 'SUCCEEDED') process.stderr.write(`execution ${run.status}: ${run.error}: ${run.cause?.slice(0, 2000)}\n`);
      return {
        seconds,
        status: run.status,
        converted: results.filter((o) => o.status === 'converted').length,
        converterTasks: tasks.filter((task) => task.container === 'converter').length,
        listerSeconds: listerSummary.seconds,
        ...stats,
      };
    } finally {
      await session.close();
    }
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

const fmt = (n: number | undefined, d = 1) => (n !== undefined && Number.isFinite(n) ? n.toFixed(d) : 'n/a');

async function main(): Promise<number> {
  const names = Array.from({ length: FILES }, (_, i) => `f-${String(i).padStart(6, '0')}.xml`);
  const only = process.env.BENCH_ONLY;
  if (only !== undefined && only !== 'lister' && only !== 'pipeline') throw new Error(`BENCH_ONLY must be lister or pipeline, got '${only}'`);
  const rows: [string, string, string][] = [];
  if (only !== 'pipeline') {
    process.stderr.write(`${FILES} files of ${MIN_KB}-${MAX_KB} KB: the lister against sftp -b...\n`);
    const l = await listerVsOpenssh(names);
    rows.push(
      ['files, total size', `${FILES}, ${fmt(l.bytes / 1e6)} MB`, ''],
      [
        'files/s, SFTP -> S3 (whole run)',
        fmt(FILES / l.listerSeconds),
        `sftp -b get to local disk: ${fmt(FILES / l.opensshSeconds)} files/s (${fmt(l.opensshSeconds)} s), lister ${fmt(l.opensshSeconds / l.listerSeconds, 2)}x`,
      ],
      ['files/s, transfer phase', fmt(l.transferFilesPerSecond), `lister run ${fmt(l.listerSeconds)} s`],
      [
        'client CPU ms per file',
        fmt((l.listerCpu * 1000) / FILES, 2),
        `sftp -b (with its ssh): ${fmt((l.opensshCpu * 1000) / FILES, 2)} ms; the S3 stand-in's CPU (in this process) is in neither`,
      ],
      ['S3 requests per file', fmt(l.requestsPerFile, 4), `${fmt(l.perFileRequests, 2)} per file + ${l.perRunRequests} per run (index, manifest, batches)`],
      ['lister peak RSS (MiB)', fmt(l.peakRssMiB), ''],
    );
  }
  let ok = true;
  if (only !== 'lister') {
    process.stderr.write('the same files through the strict local run of the state machine...\n');
    const p = await pipelineRun(names);
    ok = p.status === 'SUCCEEDED' && p.converted === FILES;
    rows.push(
      ['scheduled run', `${p.status}, ${p.converted} of ${FILES} converted`, ok ? 'every key in the results' : 'NOT every key converted'],
      [
        'converter tasks per 10,000 files',
        fmt((p.converterTasks * 10_000) / FILES, 0),
        `${p.converterTasks} tasks for ${FILES} files (goal <= 100 per 10,000)`,
      ],
      ['state transitions per file', fmt(p.transitions / FILES, 3), `${p.transitions} states entered`],
      ['largest state payload (bytes)', String(p.largestPayload), `state "${p.largestState}" (limit 262,144)`],
      ['wall time of the run (s)', fmt(p.seconds), `lister task ${fmt(p.listerSeconds)} s; local processes on a shared machine, no Fargate start latency`],
    );
  }
  const w = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  console.log(
    `load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')} on ${os.cpus().length} CPUs`,
  );
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w[0])}  ${b.padEnd(w[1])}  ${c}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
