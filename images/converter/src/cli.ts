#!/usr/bin/env node
/**
 * Local CLI: xml2json [--format lab|compact|jsonl] [--record-path P] [--out-dir DIR] [--verbose] FILE...
 * Writes DIR/<file name without .xml>.json (or stdout for one file without --out-dir); `-` is stdin.
 * Relative paths are the caller's: under `npm run xml2json` (which runs in the package root) they
 * resolve from npm's INIT_CWD, the directory npm was started in.
 * Exit 0 all converted, 65 any input malformed (one `FILE:LINE:COLUMN: message` line each on stderr),
 * 64 usage error, 74 I/O error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { convert, Format, XmlError } from './convert';
import { ConfigError, EXIT, Limits, limitsFromEnv, parseFormat } from './config';

interface Args {
  format: Format;
  recordPath?: string;
  outDir?: string;
  verbose: boolean;
  files: string[];
  help: boolean;
}

const USAGE = 'usage: xml2json [--format lab|compact|jsonl] [--record-path /root/record] [--out-dir DIR] [--verbose] FILE... (- reads stdin)';
const HELP = `${USAGE}
Converts XML to xmltodict-shaped JSON (see images/converter/README.md).
  --format F        lab (default: json.dumps(xmltodict.parse(f), indent=4)), compact, jsonl
  --record-path P   for jsonl: the record element's path, e.g. /records/record
  --out-dir DIR     write DIR/<name without .xml>.json (needed for several files)
  --verbose         a JSON log line per file on stderr
Limits come from the environment (MAX_DEPTH, MAX_VALUE_CHARS, ...; see the README).
Exit: 0 converted, 65 malformed input or a limit, 64 usage, 74 I/O error.`;

/** The caller's directory: npm runs the root script in the package root and passes the caller's as INIT_CWD. */
function callerDir(env: NodeJS.ProcessEnv): string {
  return env.npm_lifecycle_event === 'xml2json' && env.INIT_CWD ? env.INIT_CWD : process.cwd();
}

/** The output name for an input under --out-dir. */
function outName(file: string): string {
  return (file === '-' ? 'stdin' : path.basename(file).replace(/\.xml$/i, '')) + '.json';
}

function parseArgs(argv: string[]): Args {
  const a: Args = { format: 'lab', verbose: false, files: [], help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--format') a.format = parseFormat(value());
    else if (arg === '--record-path') a.recordPath = value();
    else if (arg === '--out-dir') a.outDir = value();
    else if (arg === '--verbose') a.verbose = true;
    else if (arg === '--help' || arg === '-h') a.help = true;
    else if (arg === '--') {
      a.files.push(...argv.slice(i + 1));
      i = argv.length;
    } else if (arg.startsWith('-') && arg !== '-') throw new ConfigError(`unknown option ${arg}`);
    else a.files.push(arg);
  }
  if (a.help) return a;
  if (a.files.length === 0) throw new ConfigError('no input files');
  if (a.files.filter((f) => f === '-').length > 1) throw new ConfigError('stdin (-) can be read only once');
  if (a.outDir) {
    // Two inputs writing the same DIR/<name>.json would overwrite each other: refuse before writing.
    const seen = new Map<string, string>();
    for (const f of a.files) {
      const other = seen.get(outName(f));
      if (other !== undefined) throw new ConfigError(`${other} and ${f} would both write ${outName(f)} in --out-dir`);
      seen.set(outName(f), f);
    }
  }
  if (a.files.length > 1 && !a.outDir) throw new ConfigError('several files need --out-dir');
  if (a.format === 'jsonl' && !a.recordPath) throw new ConfigError('--format jsonl needs --record-path');
  if (a.format !== 'jsonl' && a.recordPath) throw new ConfigError('--record-path only applies to --format jsonl');
  return a;
}

/**
 * Writes to a stream and waits only when it asks for back-pressure, so parsing overlaps with the
 * writes (waiting for every write's callback would serialize them).
 */
export function streamSink(w: Writable): (b: Buffer) => Promise<void> {
  let failed: Error | null = null;
  w.on('error', (e) => (failed ??= e));
  return (b) =>
    new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      if (w.write(b)) return resolve();
      const onDrain = () => {
        w.off('error', onError);
        resolve();
      };
      const onError = (e: Error) => {
        w.off('drain', onDrain);
        reject(e);
      };
      w.once('drain', onDrain);
      w.once('error', onError);
    });
}

async function convertFile(displayName: string, file: string, args: Args, limits: Limits): Promise<number> {
  const started = process.hrtime.bigint();
  let dest: string | undefined;
  let tmp: string | undefined;
  let out: Writable;
  if (args.outDir) {
    dest = path.join(args.outDir, outName(file));
    tmp = `${dest}.${process.pid}.partial`;
    out = fs.createWriteStream(tmp, { flags: 'wx' });
  } else {
    out = process.stdout;
  }
  try {
    const input = file === '-' ? process.stdin : fs.createReadStream(file, { highWaterMark: 1 << 16 });
    const source = file === '-' ? '<stdin>' : displayName;
    const r = await convert(input, streamSink(out), { source, format: args.format, recordPath: args.recordPath, ...limits });
    if (tmp && dest) {
      await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
      fs.renameSync(tmp, dest); // only complete output ever appears under the final name
    }
    if (args.verbose) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const line = {
        source: file === '-' ? '<stdin>' : displayName,
        output: dest ?? '-',
        outcome: 'converted',
        format: args.format,
        ...r,
        seconds,
        mbPerSec: r.bytesIn / 1e6 / seconds,
      };
      process.stderr.write(JSON.stringify(line) + '\n');
    }
    return EXIT.OK;
  } catch (e) {
    if (tmp) {
      out.destroy();
      fs.rmSync(tmp, { force: true });
    }
    if (e instanceof XmlError) {
      process.stderr.write(e.message + '\n');
      return EXIT.MALFORMED;
    }
    process.stderr.write(`${file === '-' ? '<stdin>' : displayName}: ${(e as Error).message}\n`);
    return EXIT.IO;
  }
}

async function main(): Promise<number> {
  let args: Args;
  let limits: Limits;
  try {
    args = parseArgs(process.argv.slice(2));
    limits = limitsFromEnv(process.env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write((e.message ? `xml2json: ${e.message}\n` : '') + USAGE + '\n');
    return EXIT.USAGE;
  }
  if (args.help) {
    process.stdout.write(HELP + '\n');
    return EXIT.OK;
  }
  const base = callerDir(process.env);
  if (args.outDir) {
    args.outDir = path.resolve(base, args.outDir);
    fs.mkdirSync(args.outDir, { recursive: true });
  }
  let worst: number = EXIT.OK;
  for (const file of args.files) {
    // Messages name the file as it was given; it is opened relative to the caller's directory.
    const code = await convertFile(file, file === '-' ? '-' : path.resolve(base, file), args, limits);
    // I/O errors outrank malformed input, which outranks success.
    if (code === EXIT.IO || (code === EXIT.MALFORMED && worst === EXIT.OK)) worst = code;
  }
  return worst;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`xml2json: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 70;
  },
);
