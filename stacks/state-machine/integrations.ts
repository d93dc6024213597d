// The state machine's service integrations other than ECS, each with the IAM statements it needs:
// S3 (a Task's aws-sdk getObject, a Distributed Map's ItemReader and ResultWriter), the ingest lock's
// DynamoDB items, Step Functions' DescribeExecution and a Distributed Map's child executions.
// https://docs.aws.amazon.com/step-functions/latest/dg/connect-supported-services.html
import { Granted, Processor, type Flow, type ItemReader, type JsonObject, type ResultWriter } from './asl';

/** `aws-sdk:s3:getObject` on objects under `prefix` (a batch's summary). */
export function s3GetObject(bucketArn: string, prefix: string): Granted<string> {
  const resource = 'arn:aws:states:::aws-sdk:s3:getObject';
  return new Granted(`task:${resource}`, resource, [
    { sid: 'ReadManifestsAndBatchResults', effect: 'Allow', actions: ['s3:GetObject'], resources: [`${bucketArn}/${prefix}*`] },
  ]);
}

/** `aws-sdk:s3:putObject` of objects under `prefix` (a failed batch's keys, or a reference to its manifest). */
export function s3PutObject(bucketArn: string, prefix: string): Granted<string> {
  const resource = 'arn:aws:states:::aws-sdk:s3:putObject';
  return new Granted(`task:${resource}`, resource, [
    { sid: 'WriteFailedManifests', effect: 'Allow', actions: ['s3:PutObject'], resources: [`${bucketArn}/${prefix}*`] },
  ]);
}

/**
 * A Distributed Map's items from a JSON array object under `prefix`.
 * https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html
 */
export function jsonArrayReader(bucketArn: string, prefix: string, parameters: JsonObject): ItemReader {
  const resource = 'arn:aws:states:::s3:getObject';
  return {
    Resource: new Granted(`itemReader:${resource}`, resource, [
      { sid: 'ReadManifestsAndBatchResults', effect: 'Allow', actions: ['s3:GetObject'], resources: [`${bucketArn}/${prefix}*`] },
    ]),
    ReaderConfig: { InputType: 'JSON' },
    Parameters: parameters,
  };
}

/**
 * A Distributed Map's items: the objects listed under a prefix (it never reads them). The listing is
 * allowed only under `prefixes`, as an `s3:prefix` condition (the definition checks the same rule).
 */
export function listObjectsReader(sid: string, bucketArn: string, prefixes: string[], parameters: JsonObject): ItemReader {
  const resource = 'arn:aws:states:::s3:listObjectsV2';
  return {
    Resource: new Granted(`itemReader:${resource}`, resource, [
      {
        sid,
        effect: 'Allow',
        actions: ['s3:ListBucket'],
        resources: [bucketArn],
        condition: [{ test: 'StringLike', variable: 's3:prefix', values: prefixes.map((p) => `${p}*`) }],
      },
    ]),
    Parameters: parameters,
  };
}

/**
 * A Distributed Map's results written to S3 under `prefix` (multipart for large result files).
 * https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
 */
export function s3ResultWriter(bucketArn: string, prefix: string, parameters: JsonObject): ResultWriter {
  const resource = 'arn:aws:states:::s3:putObject';
  return {
    Resource: new Granted(`resultWriter:${resource}`, resource, [
      {
        sid: 'WriteMapResults',
        effect: 'Allow',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [`${bucketArn}/${prefix}*`],
      },
    ]),
    Parameters: parameters,
  };
}

const DYNAMO_ACTION = { putItem: 'dynamodb:PutItem', getItem: 'dynamodb:GetItem', deleteItem: 'dynamodb:DeleteItem' } as const;

/** The optimized DynamoDB integration on one table's items. */
export function dynamoItem(call: keyof typeof DYNAMO_ACTION, tableArn: string): Granted<string> {
  const resource = `arn:aws:states:::dynamodb:${call}`;
  return new Granted(`task:${resource}`, resource, [{ sid: 'IngestLock', effect: 'Allow', actions: [DYNAMO_ACTION[call]], resources: [tableArn] }]);
}

/** DescribeExecution of this machine's executions (the ingest lock's holder). */
export function describeExecution(executionArns: string[]): Granted<string> {
  const resource = 'arn:aws:states:::aws-sdk:sfn:describeExecution';
  return new Granted(`task:${resource}`, resource, [
    { sid: 'OwnExecutions', effect: 'Allow', actions: ['states:DescribeExecution'], resources: executionArns },
  ]);
}

/**
 * A Distributed Map's processor: its children are executions of this machine, which the map run starts,
 * describes and stops. https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html
 */
export function distributedProcessor(flow: Flow, stateMachineArn: string, executionArns: string[]): Processor {
  const config = new Granted('distributedMap', { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' }, [
    { sid: 'DistributedMapChildren', effect: 'Allow', actions: ['states:StartExecution'], resources: [stateMachineArn] },
    { sid: 'OwnExecutions', effect: 'Allow', actions: ['states:DescribeExecution', 'states:StopExecution'], resources: executionArns },
  ]);
  return new Processor(config, flow);
}
