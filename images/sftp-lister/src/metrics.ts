/**
 * CloudWatch Embedded Metric Format on the lines the lister already writes (contract C1; README,
 * "Metrics"): CloudWatch Logs turns a JSON log event with an `_aws` member into metrics, no agent and
 * no API call. Spec:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
import type { Summary } from './summary';

export const NAMESPACE = 'XmlPipeline';
export const COMPONENT = 'sftp-lister';

/** Units as the EMF specification spells them (CloudWatch StandardUnit). */
type Unit = 'Count' | 'Bytes' | 'Seconds' | 'Megabytes/Second';

/** The `Pipeline` dimension: METRICS_PIPELINE (the stacks set `<namePrefix>-<stage>`), else `local`. */
function pipeline(env: Record<string, string | undefined> = process.env): string {
  const v = env.METRICS_PIPELINE?.trim();
  return v ? v : 'local';
}

/** The members that make a log line an EMF event with these metrics, in one dimension set [["Pipeline"]]. */
export function emf(metrics: Record<string, [value: number, unit: Unit]>, timestamp = Date.now()): Record<string, unknown> {
  const entries = Object.entries(metrics).filter(([, [value]]) => Number.isFinite(value));
  return {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [{ Namespace: NAMESPACE, Dimensions: [['Pipeline']], Metrics: entries.map(([Name, [, Unit]]) => ({ Name, Unit })) }],
    },
    Pipeline: pipeline(),
    Component: COMPONENT,
    ...Object.fromEntries(entries.map(([name, [value]]) => [name, value])),
  };
}

/** Per file that was ingested or failed (on its `ingested` / failure log line). */
export function fileMetrics(outcome: 'ingested' | 'failed', bytes: number, seconds: number, retries: number): Record<string, unknown> {
  return emf({
    ...(outcome === 'ingested' ? { FilesIngested: [1, 'Count'], BytesIngested: [bytes, 'Bytes'] } : { FilesIngestFailed: [1, 'Count'] }),
    FileIngestSeconds: [Math.round(seconds * 1000) / 1000, 'Seconds'],
    IngestRetries: [retries, 'Count'],
  });
}

/** Per run (on the summary line): written also when the run failed, as long as the process can write. */
export function runMetrics(summary: Summary, exitCode: number): Record<string, unknown> {
  return emf({
    ListerRuns: [1, 'Count'],
    ListerRunFailures: [exitCode === 0 ? 0 : 1, 'Count'],
    FilesListed: [summary.listed, 'Count'],
    FilesTooYoung: [summary.tooYoung, 'Count'],
    FilesPresent: [summary.alreadyPresent, 'Count'],
    IngestRunSeconds: [summary.seconds, 'Seconds'],
    IngestThroughput: [summary.MBps, 'Megabytes/Second'],
  });
}
