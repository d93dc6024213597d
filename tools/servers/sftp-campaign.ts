/**
 * The randomized fault campaign of issue 11: the real lister (images/sftp-lister/dist) against the
 * strict test servers, round after round, with faults drawn from a seeded generator: SIGKILL and SIGTERM
 * of the lister mid-run, SFTP session drops, S3 faults (5xx, stalls, resets, lost responses, failed
 * manifest and index PUTs: the stand-in's fault rules) and restarts, overlapping runs with random
 * leave/delete/move configurations, and files added and rewritten between and during runs.
 * After the rounds settle (clean runs until nothing is left to do) it checks the invariants:
 *
 * - every file version left on SFTP is in S3, byte-identical;
 * - every object state seen in S3 is named in a batch manifest whose batch index was written after
 *   that state landed (at-least-once announcement, contract C3), each index's batches readable and
 *   together the run's manifest;
 * - no object ever holds bytes the file never had (checked after every round);
 * - no source is deleted or moved unless S3 holds exactly its bytes (checked after every round);
 * - nothing is ingested from the completion folder (no re-ingest loop);
 * - a run prints exactly one summary line unless SIGKILLed; a round without faults exits 0.
 *
 * The seed fixes the plan (files, writes, faults, their triggers); process timing still varies, so a
 * failing seed reproduces the same scenario, not always the same interleaving.
 */
import type { ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import prand from 'pure-rand';
import { imageNode } from './image-runtime';
import type { Fault, FaultRule, S3Server } from './s3';
import type { SftpServer } from './sshd';
import { ListerResult, listerEnv, runLister } from './lister-harness';

/** Seeded choices (pure-rand's xoroshiro128+). */
export class Rng {
  private readonly g: prand.RandomGenerator;
  constructor(seed: number) {
    this.g = prand.xoroshiro128plus(seed);
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return prand.unsafeUniformIntDistribution(lo, hi, this.g);
  }
  chance(p: number): boolean {
    return this.int(0, 999_999) < p * 1_000_000;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
}

export interface CampaignOptions {
  seed: number;
  rounds: number;
  sftp: SftpServer;
  s3: S3Server;
  bucket: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** The lister entrypoint to run (default: images/sftp-lister/dist/main.js), e.g. an older build to compare. */
  listerMain?: string;
}

export interface Violation {
  round: number;
  kind: string;
  detail: string;
}

export interface CampaignReport {
  seed: number;
  rounds: number;
  runs: number;
  /** Faults injected, by kind (only those that hit a live run or a real request). */
  faults: Record<string, number>;
  /** File writes by the campaign, by when and how (between runs / during a run; add, replace, rewrite in place). */
  writes: Record<string, number>;
  /** Sources the lister removed from SFTP, seen after each round: moved or deleted. */
  completions: Record<string, number>;
  /** Exit codes (or signals) of the runs. */
  exits: Record<string, number>;
  filesWritten: number;
  versionsWritten: number;
  violations: Violation[];
  seconds: number;
}

const DIR = 'camp';
const PREFIX = `${DIR}/`;
const DONE = 'done';
const MANIFEST_PREFIXES = ['manifests/', '.sftp-lister/manifests/'];
const KiB = 1024;
const MiB = 1024 * KiB;
/** Folders files are added in (relative to DIR); names with spaces and non-ASCII UTF-8 on purpose. */
const FOLDERS = ['', 'in', 'in/deep', 'zweite Ebene', 'ünïcödé'];
/** A run that takes longer than this is hung (the lister's own hard exit is 15 s after SIGTERM). */
const RUN_TIMEOUT_MS = 60_000;

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the campaign wrote: every version of every path (relative to DIR), and which paths it expects on SFTP. */
class Files {
  /** path -> sha256 of every version ever written there. */
  readonly versions = new Map<string, Set<string>>();
  /** path -> sha256 of the last version written, for paths that should still be on SFTP. */
  readonly current = new Map<string, string>();
  lastWrite = 0;
  lastPath?: string;
  written = 0;
  private next = 0;
  constructor(
    private readonly root: string,
    private readonly rng: Rng,
  ) {}

  private local(rel: string): string {
    return path.join(this.root, DIR, rel);
  }
  private record(rel: string, body: Buffer): void {
    const h = sha(body);
    if (!this.versions.has(rel)) this.versions.set(rel, new Set());
    this.versions.get(rel)!.add(h);
    this.current.set(rel, h);
    this.lastPath = rel;
    this.lastWrite = Date.now();
    this.written++;
  }
  private size(): number {
    const r = this.rng.int(0, 99);
    // Mostly small; some span several SFTP reads; a few span two multipart parts (PART_SIZE_MB=5).
    if (r < 70) return this.rng.int(0, 64 * KiB);
    if (r < 95) return this.rng.int(64 * KiB, MiB);
    return this.rng.int(5 * MiB + 1, 7 * MiB);
  }
  /** Writes next to the target and renames it in: the file appears whole (as a careful partner uploads). */
  private replaceWith(rel: string, body: Buffer): void {
    const file = this.local(rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, body);
    fs.renameSync(tmp, file);
    this.record(rel, body);
  }
  add(): string {
    const folder = this.rng.pick(FOLDERS);
    const rel = path.posix.join(folder, `f${String(this.next++).padStart(4, '0')}${this.rng.pick(['.xml', '.bin', ' copy.xml'])}`);
    this.replaceWith(rel, crypto.randomBytes(this.size()));
    return rel;
  }
  /**
   * A path the campaign wrote that should still be on SFTP (undefined when there is none); with
   * `recent`, most often the one written last: a rewrite in the same second as the version a run is
   * reading is what whole-second mtimes cannot tell apart.
   */
  existing(recent = false): string | undefined {
    const paths = [...this.current.keys()].filter((rel) => fs.existsSync(this.local(rel)));
    if (recent && this.lastPath && paths.includes(this.lastPath) && this.rng.chance(0.6)) return this.lastPath;
    return paths.length ? this.rng.pick(paths) : undefined;
  }
  /** A new version through rename (new inode), sometimes the same size. */
  replace(rel: string): void {
    const size = this.rng.chance(0.5) ? fs.statSync(this.local(rel)).size : this.size();
    this.replaceWith(rel, crypto.randomBytes(size));
  }
  /** Same size, new bytes, written in place in 64 KiB writes: a reader can catch it half old, half new. */
  rewriteInPlace(rel: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.local(rel), 'r+'); // never creates: the lister may have completed it
    } catch {
      return false;
    }
    try {
      const size = fs.fstatSync(fd).size;
      const body = crypto.randomBytes(size);
      for (let at = 0; at < size; at += 64 * KiB) fs.writeSync(fd, body, at, Math.min(64 * KiB, size - at), at);
      this.record(rel, body);
      return true;
    } finally {
      fs.closeSync(fd);
    }
  }
  /** One random change: add a file, or rewrite an existing one (by rename or in place). */
  mutate(duringRun = false): string {
    const rel = this.rng.chance(duringRun ? 0.2 : 0.4) ? undefined : this.existing(duringRun);
    if (rel === undefined) {
      this.add();
      return 'add';
    }
    if (this.rng.chance(0.5)) {
      this.replace(rel);
      return 'replace';
    }
    return this.rewriteInPlace(rel) ? 'rewrite-in-place' : 'rewrite-missed';
  }
}

interface ObjectState {
  key: string;
  sha: string;
  lastModified: number;
}

/** Faults a run can take: each fires at most once, on a trigger drawn for it. */
type RunFault = 'sigkill' | 'sigterm' | 'session-drop' | 'write-during-run';

interface PlannedRun {
  env: Record<string, string>;
  delayMs: number;
  faults: { kind: RunFault; afterLines: number; extraMs: number }[];
  label: string;
}

export interface Campaign {
  readonly report: CampaignReport;
  /** Adds a file the way the campaign does (its versions are known to the checker); returns its path under the folder. */
  addFile(): string;
  /** Checks every invariant again, now (e.g. after a test planted a fault); returns the new violations. */
  recheck(): Promise<Violation[]>;
  close(): void;
}

export async function runCampaign(o: CampaignOptions): Promise<Campaign> {
  const started = Date.now();
  const rng = new Rng(o.seed);
  const say = o.log ?? (() => undefined);
  const client: S3Client = o.s3.client();
  const files = new Files(o.sftp.root, rng);
  const report: CampaignReport = {
    seed: o.seed,
    rounds: o.rounds,
    runs: 0,
    faults: {},
    writes: {},
    completions: {},
    exits: {},
    filesWritten: 0,
    versionsWritten: 0,
    violations: [],
    seconds: 0,
  };
  const seenViolations = new Set<string>();
  let round = 0;
  const violate = (kind: string, detail: string) => {
    const id = `${kind} ${detail}`;
    if (seenViolations.has(id)) return;
    seenViolations.add(id);
    report.violations.push({ round, kind, detail });
    say(`  VIOLATION [${kind}] ${detail}`);
  };
  const bump = (figures: Record<string, number>, kind: string, n = 1) => (figures[kind] = (figures[kind] ?? 0) + n);
  const count = (kind: string) => bump(report.faults, kind);
  const observed = new Map<string, ObjectState>();
  const shaCache = new Map<string, { stamp: string; sha: string; size: number }>();
  const doneLocal = path.join(o.sftp.root, DIR, DONE);

  fs.mkdirSync(path.join(o.sftp.root, DIR), { recursive: true });
  for (let i = 0; i < 12; i++) files.add();

  const baseEnv = (overrides: Record<string, string | undefined>) =>
    listerEnv(o.sftp, o.s3, o.bucket, {
      SFTP_REMOTE_DIR: DIR,
      SFTP_RECURSIVE: 'true',
      DEST_PREFIX: PREFIX,
      MIN_AGE_SECONDS: '0',
      RETRY_BASE_MS: '50',
      PART_SIZE_MB: '5',
      LOG_LEVEL: 'debug',
      ...overrides,
    });

  /** A run's configuration drawn from the documented settings. */
  const drawConfig = (r: number, i: number): Record<string, string | undefined> => {
    const completion = rng.pick(['leave', 'leave', 'delete', 'move'] as const);
    const cfg: Record<string, string | undefined> = {
      COMPLETION: completion,
      CONCURRENCY: String(rng.int(1, 4)),
      RETRIES: String(rng.int(0, 2)),
      MANIFEST_KEY: rng.chance(0.5) ? `manifests/r${r}-${i}.json` : undefined,
      MAX_FILES: rng.chance(0.15) ? String(rng.int(1, 5)) : undefined,
    };
    if (completion === 'move') {
      // The spellings an operator may use for a folder inside the listed one (defect 2).
      cfg.COMPLETION_MOVE_DIR = rng.pick([`${DIR}/${DONE}`, `${DIR}/${DONE}/`, `${DIR}/./${DONE}`, path.join(o.sftp.root, DIR, DONE)]);
    } else {
      // leave/delete: the archive of earlier moves is not ingest input (as an operator would exclude it).
      cfg.EXCLUDE = `${DONE}/**`;
    }
    return cfg;
  };

  const runOne = async (plan: PlannedRun): Promise<{ result: ListerResult; fired: RunFault[] }> => {
    if (plan.delayMs) await sleep(plan.delayMs);
    const fired: RunFault[] = [];
    let lines = 0;
    const pending = plan.faults.map((f) => ({ ...f, done: false }));
    const act = (kind: RunFault, child: ChildProcess) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (kind === 'sigkill' || kind === 'sigterm') {
        if (!child.kill(kind === 'sigkill' ? 'SIGKILL' : 'SIGTERM')) return;
      } else if (kind === 'session-drop') o.sftp.killSessions();
      else bump(report.writes, `during run: ${files.mutate(true)}`);
      fired.push(kind);
      if (kind !== 'write-during-run') count(kind);
    };
    let killer: NodeJS.Timeout | undefined;
    const result = await runLister(plan.env, {
      command: o.listerMain ? [...imageNode('sftp-lister'), o.listerMain] : undefined,
      onLog: (_line, child) => {
        if (!killer) killer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
        lines++;
        for (const f of pending) {
          if (f.done || lines < f.afterLines) continue;
          f.done = true;
          setTimeout(() => act(f.kind, child), f.extraMs);
        }
      },
    });
    clearTimeout(killer);
    report.runs++;
    const exit = result.signal ?? String(result.code);
    report.exits[exit] = (report.exits[exit] ?? 0) + 1;
    if (result.signal === 'SIGKILL' && !fired.includes('sigkill'))
      violate('run-hung', `${plan.label} did not finish within ${RUN_TIMEOUT_MS / 1000} s (killed)`);
    if (result.signal !== 'SIGKILL') {
      const lines = result.stdout.split('\n').filter(Boolean);
      if (lines.length !== 1 || !result.summary)
        violate('summary-line', `${plan.label} exited ${exit} with ${lines.length} stdout lines, not one JSON summary`);
    }
    return { result, fired };
  };

  for (round = 1; round <= o.rounds; round++) {
    // Between runs: files added and rewritten (completion keeps removing them, so add steadily).
    for (let i = rng.int(1, 2); i > 0; i--) {
      files.add();
      bump(report.writes, 'between runs: add');
    }
    for (let i = rng.int(0, 2); i > 0; i--) bump(report.writes, `between runs: ${files.mutate()}`);

    const overlapping = rng.chance(0.3);
    const plans: PlannedRun[] = [];
    for (let i = 0; i < (overlapping ? 2 : 1); i++) {
      const faults: PlannedRun['faults'] = [];
      for (const [kind, p] of [
        ['sigkill', 0.2],
        ['sigterm', 0.15],
        ['session-drop', 0.2],
        ['write-during-run', 0.35],
      ] as [RunFault, number][]) {
        // Anchored on the run's early log lines, then a delay: lands anywhere from listing to the end.
        if (rng.chance(p)) faults.push({ kind, afterLines: rng.int(1, 4), extraMs: rng.int(0, 1500) });
      }
      const cfg = drawConfig(round, i);
      plans.push({
        env: baseEnv(cfg),
        delayMs: i === 0 ? 0 : rng.int(0, 600),
        faults,
        label: `round ${round} run ${i + 1} (${cfg.COMPLETION}${cfg.COMPLETION_MOVE_DIR ? ` to ${cfg.COMPLETION_MOVE_DIR}` : ''})`,
      });
    }
    if (overlapping) count('overlapping-runs');

    // S3 faults for the whole round (the stand-in's fault rules), on the landing keys, the index or the manifests.
    const s3Faults: { kind: string; fault: Fault }[] = [];
    const dataOps: FaultRule['operation'] = ['PutObject', 'UploadPart', 'CompleteMultipartUpload'];
    const s3Draw: [string, number, () => FaultRule][] = [
      ['s3-5xx', 0.25, () => ({ operation: dataOps, key: /^camp\//, nth: rng.int(1, 6), action: { kind: 'error', status: rng.pick([500, 503] as const) } })],
      ['s3-stall', 0.15, () => ({ operation: [...dataOps, 'HeadObject', 'GetObject'], nth: rng.int(1, 8), action: { kind: 'stall', ms: rng.int(300, 3000) } })],
      ['s3-reset', 0.1, () => ({ operation: dataOps, key: /^camp\//, nth: rng.int(1, 6), action: { kind: 'reset' } })],
      ['s3-response-lost', 0.1, () => ({ operation: dataOps, key: /^camp\//, nth: rng.int(1, 4), when: 'after', action: { kind: 'error', status: 500 } })],
      ['manifest-put-failed', 0.2, () => ({ operation: 'PutObject', key: /manifests\//, action: { kind: 'error', status: 500 } })],
      ['manifest-response-lost', 0.1, () => ({ operation: 'PutObject', key: /manifests\//, when: 'after', times: 1, action: { kind: 'error', status: 500 } })],
      ['index-put-failed', 0.1, () => ({ operation: 'PutObject', key: /^\.sftp-lister\/state\//, action: { kind: 'error', status: 503 } })],
    ];
    for (const [kind, p, rule] of s3Draw) if (rng.chance(p)) s3Faults.push({ kind, fault: o.s3.fault(rule()) });
    // S3 down for a while (every connection reset, then refused), as in a restart.
    const s3Restart = rng.chance(0.08) ? { afterMs: rng.int(200, 2500), downMs: rng.int(200, 2000) } : undefined;

    const planned = [...plans.flatMap((p) => p.faults.map((f) => f.kind)), ...s3Faults.map((f) => f.kind), ...(s3Restart ? ['s3-restart'] : [])];
    say(`round ${round}: ${plans.map((p) => p.label.replace(/^round \d+ /, '')).join(' + ')}${planned.length ? `; faults ${planned.join(', ')}` : ''}`);
    const roundStart = Date.now();
    const restarting = s3Restart
      ? sleep(s3Restart.afterMs).then(async () => {
          await o.s3.stop(true);
          count('s3-restart');
          await sleep(s3Restart.downMs);
          await o.s3.restart();
        })
      : Promise.resolve();
    const outcomes = await Promise.all(plans.map(runOne));
    await restarting;
    const runSeconds = outcomes.map((x) => x.result.summary?.seconds ?? '-').join('/');
    for (const f of s3Faults) {
      if (f.fault.fired > 0) bump(report.faults, f.kind, f.fault.fired);
      f.fault.remove();
    }
    o.s3.clearFaults();

    const clean = !s3Restart && s3Faults.every((f) => f.fault.fired === 0) && outcomes.every((x) => x.fired.length === 0);
    for (const [i, x] of outcomes.entries()) {
      const code = x.result.code;
      if (clean && code !== 0)
        violate(
          'clean-run-failed',
          `${plans[i].label} had no fault but exited ${code ?? x.result.signal}: ${
            x.result.summary?.error ??
            x.result.stderr
              .split('\n')
              .filter((l) => /"level":"error"/.test(l))
              .slice(0, 3)
              .join(' | ')
          }`,
        );
    }
    const checkStart = Date.now();
    await checkRound();
    say(
      `  round ${round}: exits ${outcomes.map((x) => x.result.signal ?? x.result.code).join('/')}, runs ${((checkStart - roundStart) / 1000).toFixed(1)} s (lister says ${runSeconds}), check ${((Date.now() - checkStart) / 1000).toFixed(1)} s`,
    );
  }

  // Settle: clean runs (leave) until one has nothing left to do, with every file older than the
  // lister's minimum age; then the final invariants.
  let settled = false;
  for (let i = 0; i < 4 && !settled; i++) {
    const wait = files.lastWrite + 3000 - Date.now();
    if (wait > 0) await sleep(wait);
    const { result } = await runOne({
      env: baseEnv({ COMPLETION: 'leave', EXCLUDE: `${DONE}/**`, MANIFEST_KEY: `manifests/settle-${i}.json` }),
      delayMs: 0,
      faults: [],
      label: `settling run ${i + 1}`,
    });
    if (result.code !== 0) violate('clean-run-failed', `settling run ${i + 1} exited ${result.code ?? result.signal}: ${result.summary?.error ?? ''}`);
    const s = result.summary as (Record<string, number> & { tooYoung?: number }) | undefined;
    settled = !!s && s.ingested === 0 && (s.tooYoung ?? 0) === 0 && (s.failed ?? 0) === 0;
    say(`settling run ${i + 1}: ${result.stdout.trim()}`);
  }
  if (!settled) violate('not-settled', 'four clean runs in a row still found work (re-ingest loop?)');
  await checkRound();
  await checkFinal();

  report.filesWritten = files.versions.size;
  report.versionsWritten = files.written;
  report.seconds = Math.round((Date.now() - started) / 100) / 10;
  return {
    report,
    addFile: () => files.add(),
    async recheck() {
      const before = report.violations.length;
      round = o.rounds + 1;
      await checkRound();
      await checkFinal();
      return report.violations.slice(before);
    },
    close: () => client.destroy(),
  };

  async function listObjects(prefix: string): Promise<{ key: string; etag: string; lastModified: number }[]> {
    const out: { key: string; etag: string; lastModified: number }[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: o.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const c of page.Contents ?? []) out.push({ key: c.Key!, etag: c.ETag ?? '', lastModified: c.LastModified!.getTime() });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
  async function body(key: string): Promise<Buffer> {
    const res = await client.send(new GetObjectCommand({ Bucket: o.bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  /** After each round: objects hold versions; removed sources have their verified object. */
  async function checkRound(): Promise<void> {
    const objects = new Map<string, string>();
    for (const obj of await listObjects(PREFIX)) {
      // Read an object again only when it changed (ETag and LastModified) since the last check.
      const stamp = `${obj.etag} ${obj.lastModified}`;
      let cached = shaCache.get(obj.key);
      if (cached?.stamp !== stamp) {
        const b = await body(obj.key);
        cached = { stamp, sha: sha(b), size: b.length };
        shaCache.set(obj.key, cached);
      }
      const h = cached.sha;
      objects.set(obj.key, h);
      const rel = obj.key.slice(PREFIX.length);
      if (rel === DONE || rel.startsWith(`${DONE}/`)) violate('reingested-completion-folder', `${obj.key} was ingested from the completion folder`);
      else if (!files.versions.get(rel)?.has(h)) violate('corrupt-object', `${obj.key} holds bytes no version of ${rel} had (${cached.size} bytes)`);
      const prev = observed.get(`${obj.key} ${h}`);
      if (!prev) observed.set(`${obj.key} ${h}`, { key: obj.key, sha: h, lastModified: obj.lastModified });
    }
    for (const [rel, h] of [...files.current]) {
      if (fs.existsSync(path.join(o.sftp.root, DIR, rel))) continue;
      // Gone from SFTP: only the lister removes files (delete, or move to done/).
      files.current.delete(rel);
      const moved = path.join(doneLocal, rel);
      if (!fs.existsSync(moved)) bump(report.completions, 'deleted');
      else if (sha(fs.readFileSync(moved)) === h) bump(report.completions, 'moved');
      else violate('moved-other-bytes', `${rel} is gone and ${DONE}/${rel} holds another version than its last one`);
      const key = PREFIX + rel;
      if (objects.get(key) !== h) {
        violate('removed-without-object', `${rel} was removed from SFTP but ${objects.has(key) ? `${key} holds another version` : `${key} does not exist`}`);
      }
    }
  }

  /** After settling: every file on SFTP is in S3; every object state seen was announced after it landed. */
  async function checkFinal(): Promise<void> {
    // What is on SFTP now (not what the campaign thinks it wrote): each file's bytes must be in S3.
    const folder = path.join(o.sftp.root, DIR);
    const onSftp = fs
      .readdirSync(folder, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith('.'))
      .map((d) => path.relative(folder, path.join(d.parentPath, d.name)).split(path.sep).join('/'))
      .filter((rel) => !rel.startsWith(`${DONE}/`));
    for (const rel of onSftp) {
      const h = sha(fs.readFileSync(path.join(folder, rel)));
      const key = PREFIX + rel;
      let got: string | undefined;
      try {
        got = sha(await body(key));
      } catch {
        got = undefined;
      }
      if (got !== h) violate('version-not-ingested', `${rel}: last version not in S3 (${got ? 'object holds an older version' : 'no object'})`);
    }
    // Announced = named in a batch of a batch index (contract C3: what the state machine reads; the
    // index is written last, so its time is when the batch's keys were announced).
    const announced = new Map<string, number[]>();
    const readJson = async (key: string): Promise<unknown> => {
      try {
        return JSON.parse((await body(key)).toString('utf8'));
      } catch (e) {
        violate('manifest-unreadable', `${key}: ${(e as Error).message}`);
        return undefined;
      }
    };
    const isKeyArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((k) => typeof k === 'string');
    for (const prefix of MANIFEST_PREFIXES) {
      const objects = await listObjects(prefix);
      const manifests = new Map<string, string[]>();
      for (const m of objects.filter((o) => !o.key.endsWith('/batches.json') && !/\/batches\/\d+\.json$/.test(o.key))) {
        const keys = await readJson(m.key);
        if (keys === undefined) continue;
        if (!isKeyArray(keys)) violate('manifest-unreadable', `${m.key} is not a JSON array of keys`);
        else manifests.set(m.key, keys);
      }
      for (const index of objects.filter((o) => o.key.endsWith('/batches.json'))) {
        const items = await readJson(index.key);
        if (items === undefined) continue;
        const valid = Array.isArray(items) && items.every((i) => typeof i?.manifest === 'string' && Number.isInteger(i?.files) && Number.isInteger(i?.bytes));
        if (!valid) {
          violate('manifest-unreadable', `${index.key} is not a JSON array of {manifest, files, bytes}`);
          continue;
        }
        const batched: string[] = [];
        for (const item of items as { manifest: string; files: number }[]) {
          const keys = await readJson(item.manifest);
          if (!isKeyArray(keys) || keys.length !== item.files) {
            violate('batch-unreadable', `${item.manifest} (in ${index.key}) is not a JSON array of ${item.files} keys`);
            continue;
          }
          batched.push(...keys);
        }
        for (const k of batched) {
          if (!announced.has(k)) announced.set(k, []);
          announced.get(k)!.push(index.lastModified);
        }
        const manifestKey = `${index.key.slice(0, -'/batches.json'.length)}.json`;
        const manifest = manifests.get(manifestKey);
        if (manifest && JSON.stringify([...manifest].sort()) !== JSON.stringify([...batched].sort())) {
          violate('batches-differ-from-manifest', `${index.key}: ${batched.length} keys in batches, ${manifest.length} in ${manifestKey}`);
        }
      }
    }
    const present = new Set((await listObjects(PREFIX)).map((x) => x.key));
    for (const k of announced.keys()) if (k.startsWith(PREFIX) && !present.has(k)) violate('manifest-names-missing-object', k);
    for (const s of observed.values()) {
      const times = announced.get(s.key) ?? [];
      if (!times.some((t) => t >= s.lastModified)) {
        violate(
          'unannounced',
          `${s.key} (state landed ${new Date(s.lastModified).toISOString()}) is in no manifest written after it landed${times.length ? ` (only in ${times.length} earlier)` : ''}`,
        );
      }
    }
  }
}

/**
 * CAMPAIGN_SEED (default: a random seed) and CAMPAIGN_ROUNDS (default 40) from the environment;
 * anything but a non-negative integer is refused with the variable's name.
 */
export function campaignSettings(env: NodeJS.ProcessEnv = process.env): { seed: number; rounds: number } {
  const int = (name: string, fallback: () => number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback();
    if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    return Number(raw);
  };
  return { seed: int('CAMPAIGN_SEED', () => crypto.randomInt(2 ** 31)), rounds: int('CAMPAIGN_ROUNDS', () => 40) };
}

/** Figures as printed at the end of a campaign. */
export function formatReport(r: CampaignReport): string {
  const byKind: Record<string, number> = {};
  for (const v of r.violations) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
  return [
    `campaign seed=${r.seed} rounds=${r.rounds} runs=${r.runs} seconds=${r.seconds}`,
    `files=${r.filesWritten} versions written=${r.versionsWritten}`,
    `exits: ${JSON.stringify(r.exits)}`,
    `faults injected: ${JSON.stringify(r.faults)}`,
    `writes: ${JSON.stringify(r.writes)}`,
    `sources completed by the lister: ${JSON.stringify(r.completions)}`,
    `violations: ${r.violations.length} ${JSON.stringify(byKind)}`,
    ...r.violations.map((v) => `  round ${v.round} [${v.kind}] ${v.detail}`),
    r.violations.length ? `reproduce: CAMPAIGN_SEED=${r.seed} CAMPAIGN_ROUNDS=${r.rounds} npm run campaign` : '',
  ]
    .filter(Boolean)
    .join('\n');
}
