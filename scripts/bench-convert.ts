// `npm run bench:convert`: the streaming converter against the reference (the lab's converter,
// json.dumps(xmltodict.parse(f), indent=4) with Debian's python3-xmltodict 0.13 on expat) and the raw
// parsers, side by side, on record XML from tools/bench/gen_records.py at 10 MB, 100 MB and 1 GB.
// Usage: npm run bench:convert [-- --sizes 10,100,1000] [--runs 3]   (MB; default 10,100,1000)
// Timings on a shared machine drift by tens of percent within a minute, so up to 100 MB the converter,
// the parsers and the reference run --runs times in alternation (1 GB once) and the table shows medians; a ratio is
// the median of the per-round ratios, each taken from runs seconds apart.
// Each measurement is a fresh child process; peak RSS comes from /usr/bin/time -f %M (GNU time, Debian
// package `time`), else from polling /proc/PID/status (VmHWM). MB/s = input bytes / wall seconds; the
// CPU column (user+sys) is printed too because the machine may be shared.
// The converter and the parse-only baselines run on the Node release the images ship (BASE_NODE_VERSION,
// fetched and cached as the container tests' base image gets it); the converter also runs once per round
// on the Node running this script, for comparison. The converter gets the node flags the image runs it
// with (imageNodeFlags: its ENTRYPOINT's flags and ENV NODE_OPTIONS), since heap flags change its peak RSS.
// A lower bound runs beside them: saxes plus the least work that makes xmltodict-shaped JSON
// (tools/bench/least-work.js), i.e. what any converter built on saxes costs at least.
// Every output file is written fresh (ext4 flushes a file renamed over an existing one: ~0.25 s here).
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median } from './stats';
import { REPO_ROOT } from './paths';
import { BASE_NODE_VERSION, imageNodeFlags, shippedNode } from '../tools/servers/image-runtime';

const ROOT = REPO_ROOT;
const CONVERTER = path.join(ROOT, 'images', 'converter');
const CLI = path.join(CONVERTER, 'dist', 'cli.js');
const GEN = path.join(ROOT, 'tools', 'bench', 'gen_records.py');
const LEAST_WORK = path.join(ROOT, 'tools', 'bench', 'least-work.js');
const PYTHON = '/usr/bin/python3'; // Debian's python3 with python3-xmltodict, as the lab ran it
const GNU_TIME = '/usr/bin/time';
const LAB_MAX_MB = 100; // the lab converter needs ~15x the input in RAM (14.6 GiB at 1 GB)

// Issue 14: at least 6x the reference (xmltodict 0.13 on expat, the lab converter) at 100 MB, byte-identical
// output, peak RSS at most 160 MiB at 1 GB.
const GOALS = { ratioToLab100: 6, rssMib1000: 160 };

interface Measure {
  wall: number;
  cpu: number;
  rssMib: number;
  code: number | null;
}

/** Runs a command; wall time, CPU seconds and peak RSS of the child. */
function measure(cmd: string, args: string[], stdoutFile?: string): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const useTime = fs.existsSync(GNU_TIME);
    const report = path.join(os.tmpdir(), `bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const argv = useTime ? ['-o', report, '-f', '%U %S %M', cmd, ...args] : args;
    const out = stdoutFile ? fs.openSync(stdoutFile, 'w') : 'ignore';
    const started = process.hrtime.bigint();
    const child = spawn(useTime ? GNU_TIME : cmd, argv, { stdio: ['ignore', out, 'inherit'] });
    let hwmKb = 0;
    const poll = useTime
      ? undefined
      : setInterval(() => {
          const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, { encoding: 'utf8', flag: 'r' }));
          if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
        }, 20);
    child.on('error', reject);
    child.on('exit', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (poll) clearInterval(poll);
      if (typeof out === 'number') fs.closeSync(out);
      let cpu = NaN;
      let rssMib = hwmKb / 1024;
      if (useTime) {
        const [u, s, m] = fs.readFileSync(report, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        fs.rmSync(report, { force: true });
        cpu = u + s;
        rssMib = m / 1024;
      }
      resolve({ wall, cpu, rssMib, code });
    });
  });
}

// Parse-only: the same decoding and 64 KiB chunks as the converter, handlers for the events the
// converter needs, no output.
const PARSE_ONLY = `
const [kind, file, modDir] = process.argv.slice(1);
const fs = require('fs');
const req = (m) => require(require.resolve(m, { paths: [modDir] }));
let p;
if (kind === 'saxes') {
  const { SaxesParser } = req('saxes');
  p = new SaxesParser({ forceXMLVersion: true, defaultXMLVersion: '1.0' });
  p.on('opentag', () => {}); p.on('text', () => {}); p.on('closetag', () => {}); p.on('cdata', () => {});
  p.on('error', (e) => { throw e; });
} else {
  const sax = req('sax');
  p = sax.parser(true);
  p.onopentag = p.ontext = p.onclosetag = p.oncdata = () => {};
  p.onerror = (e) => { throw e; };
}
const s = fs.createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 });
s.on('data', (d) => p.write(d));
s.on('end', () => p.close());
`;

const LAB = 'import json,xmltodict,sys; sys.stdout.write(json.dumps(xmltodict.parse(open(sys.argv[1], "rb")), indent=4))';

function sha256(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  fs.closeSync(fd);
  return h.digest('hex');
}

interface Row {
  mb: number;
  runs: number;
  conv: Measure;
  /** The converter on the Node running this script. */
  convHost: Measure;
  saxes: Measure;
  sax: Measure;
  /** saxes plus the least JSON work (tools/bench/least-work.js): what any converter on saxes costs at least. */
  least: Measure;
  /** Median over rounds of saxes time / converter time (wall and CPU). */
  ratioWall: number;
  ratioCpu: number;
  lab?: Measure;
  /** Median over rounds of lab time / converter time (wall and CPU). */
  labRatioWall?: number;
  labRatioCpu?: number;
  identical?: boolean;
}

/** Median wall and CPU time of several runs, and the highest peak RSS among them. */
function summary(ms: Measure[]): Measure {
  return { wall: median(ms.map((m) => m.wall)), cpu: median(ms.map((m) => m.cpu)), rssMib: Math.max(...ms.map((m) => m.rssMib)), code: ms[0].code };
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const arg = process.argv.indexOf('--sizes');
  const sizes = (arg > 0 ? process.argv[arg + 1] : '10,100,1000').split(',').map(Number);
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive integer');
  for (const f of [CLI, GEN, PYTHON]) if (!fs.existsSync(f)) throw new Error(`missing ${f} (run npm ci; apt-get install python3-xmltodict)`);
  const node = shippedNode();
  const flags = imageNodeFlags('converter');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-convert-'));
  const rows: Row[] = [];
  const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
  process.once('SIGINT', () => (cleanup(), process.exit(130)));
  try {
    for (const mb of sizes) {
      const xml = path.join(tmp, `records-${mb}mb.xml`);
      process.stderr.write(`generating ${mb} MB with gen_records.py ...\n`);
      const gen = await measure(PYTHON, [GEN, String(mb * 1_000_000), xml]);
      if (gen.code !== 0) throw new Error('gen_records.py failed');
      const bytes = fs.statSync(xml).size;
      const outDir = path.join(tmp, 'out');
      const rounds = mb <= LAB_MAX_MB ? runs : 1;
      const conv: Measure[] = [];
      const convHost: Measure[] = [];
      const saxes: Measure[] = [];
      const sax: Measure[] = [];
      const least: Measure[] = [];
      const lab: Measure[] = [];
      const ours = path.join(outDir, `records-${mb}mb.json`);
      const labOut = path.join(tmp, 'lab.json');
      let identical: boolean | undefined;
      for (let round = 1; round <= rounds; round++) {
        // Side by side: every round runs the converter, the parsers and (up to 100 MB) the reference.
        process.stderr.write(`  round ${round}/${rounds}: converter, saxes and sax parse-only${mb <= LAB_MAX_MB ? ', reference' : ''} ...\n`);
        fs.rmSync(ours, { force: true });
        const c = await measure(node, [...flags, CLI, '--out-dir', outDir, xml]);
        if (c.code !== 0) throw new Error(`converter exited ${c.code}`);
        conv.push(c);
        saxes.push(await measure(node, ['-e', PARSE_ONLY, 'saxes', xml, CONVERTER]));
        sax.push(await measure(node, ['-e', PARSE_ONLY, 'sax', xml, CONVERTER]));
        least.push(await measure(node, [LEAST_WORK, xml, path.join(tmp, 'least.json'), CONVERTER]));
        fs.rmSync(path.join(tmp, 'least.json'), { force: true });
        if (mb <= LAB_MAX_MB) {
          const l = await measure(PYTHON, ['-c', LAB, xml], labOut);
          if (l.code !== 0) throw new Error(`reference exited ${l.code}`);
          lab.push(l);
          identical = (identical ?? true) && sha256(labOut) === sha256(ours);
          fs.rmSync(labOut, { force: true });
        }
        if (process.version !== `v${BASE_NODE_VERSION}`) {
          fs.rmSync(ours, { force: true });
          convHost.push(await measure(process.execPath, [...flags, CLI, '--out-dir', outDir, xml]));
        }
      }
      const row: Row = {
        mb: bytes / 1e6,
        runs: rounds,
        conv: summary(conv),
        convHost: convHost.length ? summary(convHost) : summary(conv),
        saxes: summary(saxes),
        sax: summary(sax),
        least: summary(least),
        ratioWall: median(conv.map((c, i) => saxes[i].wall / c.wall)),
        ratioCpu: median(conv.map((c, i) => saxes[i].cpu / c.cpu)),
      };
      if (lab.length) {
        row.lab = summary(lab);
        row.labRatioWall = median(conv.map((c, i) => lab[i].wall / c.wall));
        row.labRatioCpu = median(conv.map((c, i) => lab[i].cpu / c.cpu));
        row.identical = identical;
      }
      fs.rmSync(outDir, { recursive: true, force: true });
      fs.rmSync(xml, { force: true });
      rows.push(row);
    }
  } finally {
    cleanup();
  }

  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(34) : c.padStart(12))).join('');
  const out: string[] = [];
  out.push(`bench:convert  converter and parsers on node v${BASE_NODE_VERSION} (the images' runtime), ${os.cpus().length} CPUs, load average ${load}`);
  out.push(`converter node flags (from its Dockerfile): ${flags.join(' ') || 'none'}`);
  out.push(line(['', ...rows.map((r) => `${fmt(r.mb, 0)} MB`)]));
  out.push(line(['rounds (medians below)', ...rows.map((r) => String(r.runs))]));
  const rate = (m: Measure | undefined, mb: number) => (m ? fmt(mb / m.wall) : 'skipped');
  const cpuRate = (m: Measure | undefined, mb: number) => (m ? fmt(mb / m.cpu) : 'skipped');
  out.push(line(['converter MB/s (wall)', ...rows.map((r) => rate(r.conv, r.mb))]));
  out.push(line(['converter MB/s (per CPU second)', ...rows.map((r) => cpuRate(r.conv, r.mb))]));
  out.push(line(['converter peak RSS MiB', ...rows.map((r) => fmt(r.conv.rssMib))]));
  if (process.version !== `v${BASE_NODE_VERSION}`) {
    out.push(line([`  on node ${process.version}: MB/s wall`, ...rows.map((r) => rate(r.convHost, r.mb))]));
    out.push(line([`  on node ${process.version}: per CPU s`, ...rows.map((r) => cpuRate(r.convHost, r.mb))]));
  }
  out.push(line(['saxes parse-only MB/s (wall)', ...rows.map((r) => rate(r.saxes, r.mb))]));
  out.push(line(['saxes parse-only MB/s (per CPU s)', ...rows.map((r) => cpuRate(r.saxes, r.mb))]));
  out.push(line(['sax parse-only MB/s (wall)', ...rows.map((r) => rate(r.sax, r.mb))]));
  out.push(line(['saxes + least JSON work MB/s (wall)', ...rows.map((r) => rate(r.least, r.mb))]));
  out.push(line(['saxes + least JSON work (per CPU s)', ...rows.map((r) => cpuRate(r.least, r.mb))]));
  out.push(line(['converter / saxes (wall)', ...rows.map((r) => fmt(r.ratioWall, 2))]));
  out.push(line(['converter / saxes (CPU)', ...rows.map((r) => fmt(r.ratioCpu, 2))]));
  out.push(line(['reference MB/s (wall)', ...rows.map((r) => rate(r.lab, r.mb))]));
  out.push(line(['reference MB/s (per CPU second)', ...rows.map((r) => cpuRate(r.lab, r.mb))]));
  out.push(line(['reference peak RSS MiB', ...rows.map((r) => (r.lab ? fmt(r.lab.rssMib) : 'skipped'))]));
  out.push(line(['converter / reference speed (wall)', ...rows.map((r) => (r.labRatioWall !== undefined ? fmt(r.labRatioWall, 2) + 'x' : 'skipped'))]));
  out.push(line(['converter / reference speed (CPU)', ...rows.map((r) => (r.labRatioCpu !== undefined ? fmt(r.labRatioCpu, 2) + 'x' : 'skipped'))]));
  out.push(line(['byte-identical to the reference', ...rows.map((r) => (r.identical === undefined ? '-' : r.identical ? 'yes' : 'NO'))]));
  out.push('');
  out.push('goals:');
  const at = (mb: number) => rows.find((r) => Math.round(r.mb) === mb);
  const r100 = at(100);
  const r1000 = at(1000);
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
  out.push(
    `  100 MB: >= ${GOALS.ratioToLab100}x the reference      -> ${r100?.labRatioWall !== undefined ? fmt(r100.labRatioWall, 2) : '-'}x wall, ${r100?.labRatioCpu !== undefined ? fmt(r100.labRatioCpu, 2) : '-'}x CPU: ${verdict(r100?.labRatioWall !== undefined ? r100.labRatioWall >= GOALS.ratioToLab100 : undefined)}`,
  );
  if (r100?.lab) {
    // The converter cannot outrun its own parser: what the goal asks of saxes on this host.
    const need = r100.lab.wall / GOALS.ratioToLab100;
    out.push(
      `          (${GOALS.ratioToLab100}x needs ${fmt(need, 2)} s; saxes alone parses the file in ${fmt(r100.saxes.wall, 2)} s here, ${fmt(r100.saxes.cpu, 2)} CPU-s)`,
    );
  }
  out.push(`  100 MB: byte-identical to the reference -> ${verdict(r100?.identical)}`);
  out.push(
    `  1 GB:   peak RSS <= ${GOALS.rssMib1000} MiB       -> ${r1000 ? fmt(r1000.conv.rssMib) : '-'} MiB: ${verdict(r1000 && r1000.conv.rssMib <= GOALS.rssMib1000)}`,
  );
  console.log(out.join('\n'));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
