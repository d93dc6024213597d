// The app's stacks and how they depend on each other. main.ts (the cdktf app) and the tests build the
// same graph from here, so what is tested is what is deployed.
import { App } from 'cdktf';
import { BatchStack } from './batch';
import { ClusterStack } from './cluster';
import { PipelineConfig } from './config';
import { ImagesStack } from './images';
import { IngestStack } from './ingest';
import { MonitoringStack } from './monitoring';
import { NetworkStack } from './network';
import { SftpStack } from './sftp';

export interface InfrastructureOptions {
  /** Folder with the images' build contexts. @default `<repo>/images` */
  readonly imagesDir?: string;
}

export interface Infrastructure {
  readonly network: NetworkStack;
  readonly sftp: SftpStack;
  readonly cluster: ClusterStack;
  readonly images: ImagesStack;
  readonly ingest: IngestStack;
  readonly batch: BatchStack;
  readonly monitoring: MonitoringStack;
}

/** Deploy order: network -> sftp, cluster -> images (cdktf derives it from the cross-stack references). */
export function buildInfrastructure(app: App, config: PipelineConfig, options: InfrastructureOptions = {}): Infrastructure {
  const network = new NetworkStack(app, 'network', { config });
  const sftp = new SftpStack(app, 'sftp', { config, network });
  const cluster = new ClusterStack(app, 'cluster', { config });
  const images = new ImagesStack(app, 'images', { config, cluster, imagesDir: options.imagesDir });
  // ingest -> batch: the state machine runs the lister's task; the schedule names the machine by ARN.
  const ingest = new IngestStack(app, 'ingest', { config, network, cluster, images, sftp });
  const batch = new BatchStack(app, 'batch', { config, network, cluster, images, lister: ingest });
  const { alarmEmails, alarmListerFailures, alarmConversionFailures, alarmNoIngestMinutes, runbookUrl } = config;
  const monitoring = new MonitoringStack(app, 'monitoring', {
    config,
    stateMachine: batch.stateMachine,
    scheduleGroup: ingest.scheduleGroup,
    scheduleDeadLetterQueue: ingest.deadLetterQueue,
    cluster,
    taskFamilies: { lister: ingest.taskDefinition.family, converter: batch.taskDefinition.family },
    settings: { alarmEmails, alarmListerFailures, alarmConversionFailures, alarmNoIngestMinutes, runbookUrl },
  });
  return { network, sftp, cluster, images, ingest, batch, monitoring };
}
