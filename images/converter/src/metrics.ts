/**
 * CloudWatch Embedded Metric Format on the converter's existing stdout log lines (contract C1 of the
 * team; README "Metrics"): namespace XmlPipeline, one dimension set [["Pipeline"]] with the value of
 * METRICS_PIPELINE, `Component: "converter"` as a plain property. The awslogs driver sends stdout to
 * CloudWatch Logs, which extracts the metrics; no agent and no API call.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export const NAMESPACE = 'XmlPipeline';
export const COMPONENT = 'converter';

export type Unit = 'Count' | 'Bytes' | 'Seconds' | 'Megabytes/Second';

/** Metric name -> [value, unit]; undefined entries are left out (a zero metric may be omitted). */
export type Metrics = Record<string, readonly [number, Unit] | undefined>;

/** The members to merge into a log line so that it carries `metrics`. */
export function emf(pipeline: string, metrics: Metrics, timestamp = Date.now()): Record<string, unknown> {
  const defs: Array<{ Name: string; Unit: Unit }> = [];
  const values: Record<string, number> = {};
  for (const [name, m] of Object.entries(metrics)) {
    if (m === undefined) continue;
    defs.push({ Name: name, Unit: m[1] });
    values[name] = m[0];
  }
  return {
    _aws: { Timestamp: timestamp, CloudWatchMetrics: [{ Namespace: NAMESPACE, Dimensions: [['Pipeline']], Metrics: defs }] },
    Pipeline: pipeline,
    Component: COMPONENT,
    ...values,
  };
}

/** METRICS_PIPELINE, as the stacks set it (`<namePrefix>-<stage>`); `local` outside AWS. */
export function pipelineFromEnv(env: NodeJS.ProcessEnv): string {
  return env.METRICS_PIPELINE || 'local';
}
