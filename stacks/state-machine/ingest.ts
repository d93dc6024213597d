// The scheduled ingest: the SFTP lister's task, the manifest it wrote, and a bounded description of
// what failed (the caught errors themselves stay in the execution history).
import { isString, states } from './asl';
import { STATE } from './constants';
import { ecsCluster, ecsRetrier, runTaskSync } from './run-task';
import type { Settings } from './settings';

/** Run the lister (it lands new files and writes their manifest), then convert that manifest. */
export function listerStates(s: Settings) {
  const manifestKeyOfExecution = `States.Format('${s.manifestPrefix}{}.json', $$.Execution.Name)`;
  return states({
    [STATE.runLister]: {
      Type: 'Task',
      ...runTaskSync(ecsCluster(s), s.props.lister, [
        { Name: 'DEST_BUCKET', Value: s.bucket },
        { Name: 'DEST_PREFIX', Value: s.ingestPrefix },
        { Name: 'MANIFEST_KEY', 'Value.$': manifestKeyOfExecution },
      ]),
      TimeoutSeconds: s.props.lister.timeoutSeconds ?? 3600,
      ResultPath: null,
      Retry: [ecsRetrier(s.ecsRetry)],
      // A lister that failed part-way still wrote the manifest of what it did ingest: convert those
      // (the next run will not list them again), then fail the execution so it shows.
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.ingestError', Next: STATE.locateManifest }],
      Next: STATE.locateManifest,
    },
    [STATE.locateManifest]: {
      Type: 'Pass',
      Parameters: { bucket: s.bucket, 'key.$': manifestKeyOfExecution },
      ResultPath: '$.manifest',
      Next: STATE.convertBatches,
    },
  });
}

/** How a failed ingest is described: the lister, the conversion, or both. */
export function ingestFailureStates() {
  return states({
    // A bounded summary (error names, the manifest, where the results are): the caught errors
    // themselves (a stopped task's JSON, up to 32,768 characters each) stay in the execution history.
    [STATE.ingestFailed]: {
      Type: 'Choice',
      Choices: [
        { And: [...isString('$.ingestError.Error'), ...isString('$.error.Error')], Next: STATE.describeListerAndConversionFailure },
        {
          And: [...isString('$.ingestError.Error'), ...isString('$.results.ResultWriterDetails.Bucket'), ...isString('$.results.ResultWriterDetails.Key')],
          Next: STATE.describeListerFailure,
        },
        { And: isString('$.error.Error'), Next: STATE.describeIngestConversionFailure },
      ],
      Default: STATE.describeUnknownIngestFailure,
    },
    [STATE.describeListerAndConversionFailure]: {
      Type: 'Pass',
      Parameters: {
        'cause.$':
          "States.Format('the SFTP lister failed with {}, then converting what it ingested (manifest s3://{}/{}) failed with {}; the lock was released; the caught errors are in the execution history', $.ingestError.Error, $.manifest.bucket, $.manifest.key, $.error.Error)",
      },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.describeListerFailure]: {
      Type: 'Pass',
      Parameters: {
        'cause.$':
          "States.Format('the SFTP lister failed with {}; what it ingested before (manifest s3://{}/{}) was converted, results in s3://{}/{}; the lock was released; the caught error is in the execution history', $.ingestError.Error, $.manifest.bucket, $.manifest.key, $.results.ResultWriterDetails.Bucket, $.results.ResultWriterDetails.Key)",
      },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.describeIngestConversionFailure]: {
      Type: 'Pass',
      Parameters: {
        'cause.$':
          "States.Format('converting the ingested files (manifest s3://{}/{}) failed with {}; the lock was released; the caught error is in the execution history', $.manifest.bucket, $.manifest.key, $.error.Error)",
      },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.describeUnknownIngestFailure]: {
      Type: 'Pass',
      Result: { cause: 'the ingest failed; the lock was released; the caught error is in the execution history' },
      Next: STATE.ingestFailedEnd,
    },
    [STATE.ingestFailedEnd]: { Type: 'Fail', Error: 'IngestFailed', CausePath: '$.cause' },
  });
}
