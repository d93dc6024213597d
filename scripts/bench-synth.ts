// `npm run bench:synth`: wall time and peak RSS of synthesizing the whole app (`node dist/main.js`,
// a fresh process each run, as `cdktf synth` runs it), printed next to the goals.
// Usage: npm run bench:synth [-- RUNS]   (default 10 measured runs after 2 warm-up runs)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const GOAL_SECONDS = 0.5;
const GOAL_RSS_MB = 150;

interface Run {
  wallSeconds: number;
  /** From process start of main.js to exit, as seen inside the process. */
  inProcessSeconds: number;
  peakRssMb: number;
  /** User + system CPU seconds of the process: less sensitive than wall time to other load on the machine. */
  cpuSeconds: number;
}

function runOnce(mainJs: string, preload: string, outdir: string, report: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--require', preload, mainJs], {
      cwd: path.dirname(path.dirname(mainJs)),
      env: { ...process.env, CDKTF_OUTDIR: outdir, BENCH_REPORT: report },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`node dist/main.js exited with ${code}`));
      const r = JSON.parse(fs.readFileSync(report, 'utf8')) as { maxRssKb: number; uptime: number; cpuMicros: number };
      resolve({ wallSeconds, inProcessSeconds: r.uptime, peakRssMb: r.maxRssKb / 1024, cpuSeconds: r.cpuMicros / 1e6 });
    });
  });
}

function stats(values: number[]): { median: number; min: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 10);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`RUNS must be a positive integer, got ${process.argv[2]}`);
  const mainJs = path.resolve(__dirname, '..', 'main.js');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-synth-'));
  try {
    // Preloaded into the child: peak RSS (getrusage maxrss) and in-process time, written at exit.
    const preload = path.join(tmp, 'report.js');
    fs.writeFileSync(
      preload,
      "process.on('exit', () => require('fs').writeFileSync(process.env.BENCH_REPORT, " +
        'JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS, uptime: process.uptime(), ' +
        'cpuMicros: process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime })));\n',
    );
    const outdir = path.join(tmp, 'cdktf.out');
    const report = path.join(tmp, 'report.json');
    for (let i = 0; i < 2; i++) await runOnce(mainJs, preload, outdir, report);
    const results: Run[] = [];
    for (let i = 0; i < runs; i++) results.push(await runOnce(mainJs, preload, outdir, report));

    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as { stacks: Record<string, unknown> };
    const stackCount = Object.keys(manifest.stacks).length;
    const wall = stats(results.map((r) => r.wallSeconds));
    const inProc = stats(results.map((r) => r.inProcessSeconds));
    const rss = stats(results.map((r) => r.peakRssMb));
    const cpu = stats(results.map((r) => r.cpuSeconds));
    const verdict = (ok: boolean) => (ok ? 'meets goal' : 'MISSES goal');

    console.log(`bench:synth  node ${process.version}, ${os.cpus().length} CPUs, ${stackCount} stacks (${Object.keys(manifest.stacks).join(', ')}), ${runs} runs after 2 warm-ups`);
    console.log('metric                           median     min       max       goal      verdict');
    console.log(
      `synth wall time (process)        ${wall.median.toFixed(3)} s    ${wall.min.toFixed(3)} s   ${wall.max.toFixed(3)} s   <= ${GOAL_SECONDS} s  ${verdict(wall.median <= GOAL_SECONDS)}`,
    );
    console.log(`  of which inside node           ${inProc.median.toFixed(3)} s    ${inProc.min.toFixed(3)} s   ${inProc.max.toFixed(3)} s`);
    console.log(`  CPU time (user + system)       ${cpu.median.toFixed(3)} s    ${cpu.min.toFixed(3)} s   ${cpu.max.toFixed(3)} s`);
    console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} (wall time suffers when it exceeds the CPU count)`);
    console.log(
      `peak RSS                         ${rss.median.toFixed(1)} MB   ${rss.min.toFixed(1)} MB  ${rss.max.toFixed(1)} MB  <= ${GOAL_RSS_MB} MB  ${verdict(rss.max <= GOAL_RSS_MB)}`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
