// Metric cross-check (issue 12, contract C1): both images run here for real (the lister against the
// test sshd and the S3 stand-in, the converter against the S3 stand-in), with the METRICS_PIPELINE the
// synthesized task definitions give them; their CloudWatch Embedded Metric Format lines are collected
// and checked against the EMF specification; then every metric that an alarm or a dashboard widget of
// the synthesized monitoring stack names outside the AWS/* namespaces must be one the images emitted:
// same namespace, same name, same dimension set, same dimension values. A wrong name fails (shown below
// with the real emitted set).
// EMF: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
import * as fs from 'node:fs';
import * as path from 'node:path';
import { age, listerEnv, runLister, startListerServers, ListerServers } from '../tools/servers/lister-harness';
import { corpusCases, runConverterMain } from '../tools/servers/converter-records';
import { parseWithRefs } from '../tools/tf-json';
import { readStack, synthesize } from './stacks/synth';

/** One metric as an EMF line declared it. */
interface Emitted {
  readonly namespace: string;
  readonly name: string;
  /** The dimension set, names sorted. */
  readonly dimensions: string[];
  /** The line's values of those dimensions. */
  readonly values: Record<string, string>;
  readonly unit: unknown;
  readonly component: unknown;
}

/** One metric an alarm or a widget names. */
interface Referenced {
  readonly where: string;
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Record<string, string>;
}

/**
 * The EMF metrics declared on `text`'s JSON lines (stdout and stderr: awslogs sends both to CloudWatch
 * Logs), and every way a line breaks the specification (CloudWatch Logs would drop its metrics).
 */
function emfMetrics(text: string, source: string): { metrics: Emitted[]; invalid: string[] } {
  const metrics: Emitted[] = [];
  const invalid: string[] = [];
  text.split('\n').forEach((line, i) => {
    let event: Record<string, any>;
    try {
      event = JSON.parse(line);
    } catch {
      return; // not a JSON line (no metrics)
    }
    if (event === null || typeof event !== 'object' || !('_aws' in event)) return;
    const at = `${source} line ${i + 1}`;
    const meta = event._aws;
    if (typeof meta?.Timestamp !== 'number' || !Array.isArray(meta?.CloudWatchMetrics) || meta.CloudWatchMetrics.length === 0) {
      invalid.push(`${at}: _aws needs a numeric Timestamp and a non-empty CloudWatchMetrics array`);
      return;
    }
    for (const directive of meta.CloudWatchMetrics) {
      if (typeof directive?.Namespace !== 'string' || !Array.isArray(directive.Dimensions) || !Array.isArray(directive.Metrics)) {
        invalid.push(`${at}: a CloudWatchMetrics entry needs Namespace, Dimensions and Metrics`);
        continue;
      }
      const bad = (directive.Dimensions as unknown[][]).flat().filter((d) => typeof d !== 'string' || typeof event[d as string] !== 'string');
      if (bad.length > 0) {
        invalid.push(`${at}: dimension(s) ${JSON.stringify(bad)} have no string value on the line`);
        continue;
      }
      for (const m of directive.Metrics) {
        const value = event[m?.Name];
        const numeric = typeof value === 'number' || (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'number'));
        if (!numeric) {
          invalid.push(`${at}: metric ${JSON.stringify(m?.Name)} has no numeric value on the line`);
          continue;
        }
        for (const set of directive.Dimensions as string[][]) {
          metrics.push({
            namespace: directive.Namespace,
            name: m.Name,
            dimensions: [...set].sort(),
            values: Object.fromEntries(set.map((d) => [d, event[d]])),
            unit: m.Unit,
            component: event.Component,
          });
        }
      }
    }
  });
  return { metrics, invalid };
}

/** Every metric the monitoring stack's alarms and dashboard widgets name. */
function referencedMetrics(monitoring: { resource?: Record<string, Record<string, any>> }): Referenced[] {
  const refs: Referenced[] = [];
  for (const [id, a] of Object.entries(monitoring.resource?.aws_cloudwatch_metric_alarm ?? {})) {
    if (a.metric_name !== undefined) refs.push({ where: `alarm ${a.alarm_name}`, namespace: a.namespace, name: a.metric_name, dimensions: a.dimensions ?? {} });
    for (const q of a.metric_query ?? []) {
      if (q.metric)
        refs.push({
          where: `alarm ${a.alarm_name ?? id} query ${q.id}`,
          namespace: q.metric.namespace,
          name: q.metric.metric_name,
          dimensions: q.metric.dimensions ?? {},
        });
    }
  }
  for (const d of Object.values(monitoring.resource?.aws_cloudwatch_dashboard ?? {})) {
    for (const w of JSON.parse(d.dashboard_body).widgets) {
      for (const m of w.properties?.metrics ?? []) {
        const parts = (m as unknown[]).filter((x) => typeof x === 'string') as string[];
        // The body's shorthand ("." = as the previous row) would hide names from this check: refused.
        if (parts.includes('.') || parts.includes('..') || parts.length % 2 !== 0) {
          refs.push({ where: `widget "${w.properties.title}"`, namespace: '(unreadable metric row)', name: JSON.stringify(m), dimensions: {} });
          continue;
        }
        const [namespace, name, ...dims] = parts;
        const dimensions: Record<string, string> = {};
        for (let i = 0; i < dims.length; i += 2) dimensions[dims[i]] = dims[i + 1];
        refs.push({ where: `widget "${w.properties.title}"`, namespace, name, dimensions });
      }
    }
  }
  return refs;
}

/** What the images do not back: one line per reference to a metric, namespace or dimension set they never emitted. */
function crossCheck(refs: Referenced[], emitted: Emitted[]): string[] {
  const problems: string[] = [];
  for (const r of refs) {
    if (r.namespace.startsWith('AWS/') || r.namespace === 'ECS/ContainerInsights') continue; // published by AWS itself, documented per service
    const same = emitted.filter((e) => e.namespace === r.namespace && e.name === r.name);
    const dimensionNames = Object.keys(r.dimensions).sort();
    const label = `${r.where}: ${r.namespace} ${r.name} [${dimensionNames.join(', ')}]`;
    if (!emitted.some((e) => e.namespace === r.namespace)) problems.push(`${label}: no image emits namespace ${r.namespace}`);
    else if (same.length === 0) problems.push(`${label}: no image emits metric ${r.name} in ${r.namespace}`);
    else if (!same.some((e) => e.dimensions.join() === dimensionNames.join())) {
      problems.push(`${label}: emitted only with dimension set(s) ${[...new Set(same.map((e) => `[${e.dimensions.join(', ')}]`))].join(' ')}`);
    } else if (!same.some((e) => dimensionNames.every((d) => e.values[d] === r.dimensions[d]))) {
      problems.push(`${label}: names ${JSON.stringify(r.dimensions)}, emitted ${[...new Set(same.map((e) => JSON.stringify(e.values)))].join(' ')}`);
    }
  }
  return problems;
}

const UNIT = /\((Count|Bytes|Seconds|Megabytes\/Second)\b/;

/**
 * `name unit` of every metric an image README's "Metrics" tables list: the column headed "metric..."
 * holds one or more "`Name` (Unit, ...)" items; an item without a unit takes the table's "Unit" column,
 * else the next item's unit ("`FilesListed`, `FilesTooYoung`, `FilesPresent` (Count: ...)").
 */
function documentedMetrics(readme: string): string[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Metrics')) ?? '';
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
  const out: string[] = [];
  let header: string[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('|')) {
      header = [];
      continue;
    }
    const row = cells(line);
    if (header.length === 0) {
      header = row.map((h) => h.toLowerCase());
      continue;
    }
    if (row.every((c) => /^-+$/.test(c))) continue;
    const metricCol = header.findIndex((h) => h.startsWith('metric'));
    const unitCol = header.indexOf('unit');
    // Items: split at commas outside parentheses.
    const items = row[metricCol].split(/,\s*(?![^()]*\))/);
    const units = items.map((item) => UNIT.exec(item)?.[1] ?? (unitCol >= 0 ? row[unitCol] : undefined));
    items.forEach((item, i) => {
      const name = /^`([A-Za-z]+)`/.exec(item)?.[1];
      if (name) out.push(`${name} ${units.slice(i).find((u) => u !== undefined) ?? '(no unit)'}`);
    });
  }
  return [...new Set(out)].sort();
}

/** METRICS_PIPELINE of a stack's only task definition (container_definitions holds `${...}` references). */
function taskPipeline(outdir: string, stack: string): string | undefined {
  const td = readStack(outdir, stack).only('aws_ecs_task_definition');
  const [container] = parseWithRefs<{ environment?: { name: string; value: string }[] }[]>(td.container_definitions);
  return container.environment?.find((e) => e.name === 'METRICS_PIPELINE')?.value;
}

const { outdir } = synthesize();
const monitoring = readStack(outdir, 'monitoring').json;
const BUCKET = 'ingest';
let servers: ListerServers | undefined;
const emitted: Emitted[] = [];
const invalid: string[] = [];
const collect = (text: string, source: string) => {
  const r = emfMetrics(text, source);
  emitted.push(...r.metrics);
  invalid.push(...r.invalid);
};

beforeAll(async () => {
  // Only METRICS_PIPELINE from the task definitions: the rest would point at AWS.
  const pipelineOf = (stack: string): Record<string, string> => {
    const v = taskPipeline(outdir, stack);
    return v === undefined ? {} : { METRICS_PIPELINE: v };
  };
  servers = await startListerServers(BUCKET);
  const { sftp, s3 } = servers;

  // Lister, run 1: two old files land, one is too young, one fails on every PUT (retried, then failed).
  const dir = path.join(sftp.root, 'metrics');
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, content, secondsAgo] of [
    ['a.xml', '<a>1</a>', 3600],
    ['b.xml', '<b>' + 'x'.repeat(50_000) + '</b>', 3600],
    ['failing.xml', '<f/>', 3600],
    ['young.xml', '<y/>', 0],
  ] as const) {
    fs.writeFileSync(path.join(dir, name), content);
    age(path.join(dir, name), secondsAgo);
  }
  const env = listerEnv(sftp, s3, BUCKET, {
    SFTP_REMOTE_DIR: 'metrics',
    DEST_PREFIX: 'metrics/',
    MIN_AGE_SECONDS: '600',
    RETRIES: '2',
    ...pipelineOf('ingest'),
  });
  const fault = s3.fault({ key: 'metrics/failing.xml', method: 'PUT', action: { kind: 'error', status: 500 } });
  const run1 = await runLister({ ...env, MANIFEST_KEY: 'manifests/metrics-1.json' });
  fault.remove();
  collect(run1.stdout + run1.stderr, 'lister run 1');
  // Run 2: the landed files are present, the failed one lands now.
  const run2 = await runLister({ ...env, MANIFEST_KEY: 'manifests/metrics-2.json' });
  collect(run2.stdout + run2.stderr, 'lister run 2');
  expect([run1.code, run2.code, run1.summary?.failed, run2.summary?.ingested]).toEqual([1, 0, 1, 1]);

  // Converter: one batch with a good file (its first GET answered 500, then retried), a malformed one
  // and a missing key.
  const good = corpusCases('lab').find((c) => c.name.endsWith('customer.xml'))!;
  const bad = corpusCases('invalid').find((c) => c.name.endsWith('mismatched_tag.xml'))!;
  await s3.put(BUCKET, 'incoming/good.xml', fs.readFileSync(good.xml));
  await s3.put(BUCKET, 'incoming/bad.xml', fs.readFileSync(bad.xml));
  const getFault = s3.fault({ key: 'incoming/good.xml', method: 'GET', times: 1, action: { kind: 'error', status: 500 } });
  const conv = await runConverterMain({
    ...s3.env,
    BUCKET,
    S3PATHS: JSON.stringify(['incoming/good.xml', 'incoming/bad.xml', 'incoming/missing.xml']),
    OUTPUT_PREFIX: 'json/',
    RESULT_KEY: 'results/metrics.json',
    CONCURRENCY: '2',
    ...pipelineOf('batch'),
  });
  collect(conv.stdout + conv.stderr, 'converter');
  expect([conv.code === 0, getFault.fired]).toEqual([false, 1]);
}, 240_000);

afterAll(async () => {
  await servers?.stop();
});

describe("GIVEN both images run with the task definitions' METRICS_PIPELINE", () => {
  test('THEN both emit EMF lines, every one valid by the specification, in one dimension set [Pipeline]', () => {
    expect(invalid).toEqual([]);
    expect([...new Set(emitted.map((e) => e.component))].sort()).toEqual(['converter', 'sftp-lister']);
    expect([...new Set(emitted.map((e) => `${e.namespace} [${e.dimensions.join(', ')}]`))]).toEqual(['XmlPipeline [Pipeline]']);
  });

  test('THEN the task definitions set METRICS_PIPELINE to the Pipeline value the alarms and widgets use', () => {
    const named = new Set(
      referencedMetrics(monitoring)
        .filter((r) => r.namespace === 'XmlPipeline')
        .map((r) => r.dimensions.Pipeline),
    );
    expect([...named]).toEqual(['xmlpipe-dev']);
    expect({ ingest: taskPipeline(outdir, 'ingest'), batch: taskPipeline(outdir, 'batch') }).toEqual({ ingest: 'xmlpipe-dev', batch: 'xmlpipe-dev' });
  });

  test('THEN every metric an alarm or a dashboard widget names is one the images emitted (namespace, name, dimension set and value)', () => {
    const refs = referencedMetrics(monitoring);
    // The check sees the references: alarms (plain and metric math) and every widget row.
    expect(refs.filter((r) => r.namespace === 'XmlPipeline').length).toBeGreaterThanOrEqual(25);
    expect(refs.some((r) => r.where.startsWith('alarm') && r.where.includes(' query '))).toBe(true);
    expect(crossCheck(refs, emitted)).toEqual([]);
  });

  test('THEN each image README lists exactly the metrics that image emitted, with the unit it emitted', () => {
    for (const [component, dir] of [
      ['sftp-lister', 'sftp-lister'],
      ['converter', 'converter'],
    ]) {
      const readme = fs.readFileSync(path.join(__dirname, '..', 'images', dir, 'README.md'), 'utf8');
      const seen = [...new Set(emitted.filter((e) => e.component === component).map((e) => `${e.name} ${e.unit}`))].sort();
      expect(seen.length).toBeGreaterThanOrEqual(11);
      expect({ component, documented: documentedMetrics(readme) }).toEqual({ component, documented: seen });
    }
  });

  test('WHEN a README table lists several names before one unit or a unit column THEN each name gets its unit', () => {
    const readme = [
      '## Metrics',
      '| line | metrics (unit) |',
      '|---|---|',
      "| run | `Runs` (Count, 1), `Listed`, `Young` (Count: `listed`, `tooYoung`), `Speed` (Megabytes/Second, the summary's `MBps`) |",
      '',
      '| Metric | Unit | Line |',
      '| --- | --- | --- |',
      '| `Written` | Bytes | per key |',
      '## Next',
      '| `NotAMetric` | Count |',
    ].join('\n');
    expect(documentedMetrics(readme)).toEqual(['Listed Count', 'Runs Count', 'Speed Megabytes/Second', 'Written Bytes', 'Young Count']);
  });

  test('WHEN an alarm or widget names a wrong metric, namespace, dimension set or value THEN the check names each', () => {
    const broken = JSON.parse(JSON.stringify(monitoring));
    const alarms = broken.resource.aws_cloudwatch_metric_alarm;
    const conversion = Object.values(alarms).find((a: any) => a.alarm_name.endsWith('files-failing-conversion')) as any;
    conversion.metric_query.find((q: any) => q.id === 'failed').metric.metric_name = 'FilesConvertFail';
    const lister = Object.values(alarms).find((a: any) => a.alarm_name.endsWith('lister-failing')) as any;
    lister.metric_query.find((q: any) => q.id === 'runs').metric.dimensions = { Pipeline: 'xmlpipe-dev', Component: 'sftp-lister' };
    lister.metric_query.find((q: any) => q.id === 'failures').metric.dimensions = { Pipeline: 'xmlpipe-prod' };
    const dashboard = Object.values(broken.resource.aws_cloudwatch_dashboard)[0] as any;
    const body = JSON.parse(dashboard.dashboard_body);
    body.widgets.find((w: any) => w.properties.title === 'Bytes').properties.metrics[0][0] = 'XmlPipelines';
    dashboard.dashboard_body = JSON.stringify(body);

    // Only what the breakage adds (independent of whether the real references pass yet).
    const before = new Set(crossCheck(referencedMetrics(monitoring), emitted));
    expect(
      crossCheck(referencedMetrics(broken), emitted)
        .filter((p) => !before.has(p))
        .sort(),
    ).toEqual(
      [
        'alarm xmlpipe-dev-files-failing-conversion query failed: XmlPipeline FilesConvertFail [Pipeline]: no image emits metric FilesConvertFail in XmlPipeline',
        'alarm xmlpipe-dev-lister-failing query runs: XmlPipeline ListerRuns [Component, Pipeline]: emitted only with dimension set(s) [Pipeline]',
        'alarm xmlpipe-dev-lister-failing query failures: XmlPipeline ListerRunFailures [Pipeline]: names {"Pipeline":"xmlpipe-prod"}, emitted {"Pipeline":"xmlpipe-dev"}',
        'widget "Bytes": XmlPipelines BytesIngested [Pipeline]: no image emits namespace XmlPipelines',
      ].sort(),
    );
  });

  test('WHEN a line breaks the EMF specification THEN it is reported, not counted', () => {
    const lines = [
      JSON.stringify({
        _aws: {
          Timestamp: 1,
          CloudWatchMetrics: [{ Namespace: 'XmlPipeline', Dimensions: [['Pipeline']], Metrics: [{ Name: 'FilesConverted', Unit: 'Count' }] }],
        },
        Pipeline: 'p',
      }),
      JSON.stringify({
        _aws: {
          Timestamp: 1,
          CloudWatchMetrics: [{ Namespace: 'XmlPipeline', Dimensions: [['Pipeline']], Metrics: [{ Name: 'FilesConverted', Unit: 'Count' }] }],
        },
        FilesConverted: 1,
      }),
      JSON.stringify({ _aws: { CloudWatchMetrics: [] }, FilesConverted: 1 }),
      'plain text',
    ].join('\n');
    const r = emfMetrics(lines, 'sample');
    expect(r.metrics).toEqual([]);
    expect(r.invalid).toEqual([
      'sample line 1: metric "FilesConverted" has no numeric value on the line',
      'sample line 2: dimension(s) ["Pipeline"] have no string value on the line',
      'sample line 3: _aws needs a numeric Timestamp and a non-empty CloudWatchMetrics array',
    ]);
  });
});
