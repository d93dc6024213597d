// `npm run bench:synth`: wall time and peak RSS of synthesizing the whole app in a fresh process, as
// `cdktf synth` runs it (cdktf.json: the esbuild bundle dist/main.bundle.js), printed next to the goals;
// the unbundled `node dist/main.js` is measured alongside for comparison.
// Usage: npm run bench:synth [-- RUNS]   (default 10 measured runs after 2 warm-up runs)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { listStacks } from '../tools/tf-json';
import { bundleApp } from './bundle-app';
import { median } from './stats';

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
      if (code !== 0) return reject(new Error(`node ${mainJs} exited with ${code}`));
      const r = JSON.parse(fs.readFileSync(report, 'utf8')) as { maxRssKb: number; uptime: number; cpuMicros: number };
      resolve({ wallSeconds, inProcessSeconds: r.uptime, peakRssMb: r.maxRssKb / 1024, cpuSeconds: r.cpuMicros / 1e6 });
    });
  });
}

function stats(values: number[]): { median: number; min: number; max: number } {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
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
    const bundle = bundleApp();
    // Alternate the two so load from elsewhere on the machine hits both alike.
    const bundled: Run[] = [];
    const unbundled: Run[] = [];
    for (let i = 0; i < runs + 2; i++) {
      const b = await runOnce(bundle, preload, outdir, report);
      const u = await runOnce(mainJs, preload, outdir, report);
      if (i >= 2) {
        bundled.push(b);
        unbundled.push(u);
      }
    }

    const stackNames = listStacks(outdir).map((s) => s.name);
    const stackCount = stackNames.length;
    const verdict = (ok: boolean) => (ok ? 'meets goal' : 'MISSES goal');
    const f = (v: number, unit: string, digits: number) => `${v.toFixed(digits)} ${unit}`.padEnd(10);

    console.log(
      `bench:synth  node ${process.version}, ${os.cpus().length} CPUs, ${stackCount} stacks (${stackNames.join(', ')}), ${runs} runs each after 2 warm-ups`,
    );
    console.log(`${'metric'.padEnd(44)}${'median'.padEnd(10)}${'min'.padEnd(10)}${'max'.padEnd(10)}${'goal'.padEnd(11)}verdict`);
    const rows: [string, Run[]][] = [
      ['cdktf app (dist/main.bundle.js, cdktf.json)', bundled],
      ['unbundled (node dist/main.js), comparison', unbundled],
    ];
    for (const [label, results] of rows) {
      const wall = stats(results.map((r) => r.wallSeconds));
      const inProc = stats(results.map((r) => r.inProcessSeconds));
      const cpu = stats(results.map((r) => r.cpuSeconds));
      const rss = stats(results.map((r) => r.peakRssMb));
      const primary = results === bundled;
      console.log(label);
      console.log(
        `${'  synth wall time (process)'.padEnd(44)}${f(wall.median, 's', 3)}${f(wall.min, 's', 3)}${f(wall.max, 's', 3)}${primary ? `${`<= ${GOAL_SECONDS} s`.padEnd(11)}${verdict(wall.median <= GOAL_SECONDS)}` : ''}`,
      );
      console.log(`${'    of which inside node'.padEnd(44)}${f(inProc.median, 's', 3)}${f(inProc.min, 's', 3)}${f(inProc.max, 's', 3)}`);
      console.log(`${'    CPU time (user + system)'.padEnd(44)}${f(cpu.median, 's', 3)}${f(cpu.min, 's', 3)}${f(cpu.max, 's', 3)}`);
      console.log(
        `${'  peak RSS'.padEnd(44)}${f(rss.median, 'MB', 1)}${f(rss.min, 'MB', 1)}${f(rss.max, 'MB', 1)}${primary ? `${`<= ${GOAL_RSS_MB} MB`.padEnd(11)}${verdict(rss.max <= GOAL_RSS_MB)}` : ''}`,
      );
    }
    console.log(
      `load average at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (wall time suffers when it exceeds the CPU count)`,
    );
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
