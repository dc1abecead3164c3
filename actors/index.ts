/**
 * The real implementations of every actor the machine names, wired to their
 * services. The command line builds these once; tests use fakes instead.
 */
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import type { actorContracts } from '../machines/actor-contracts.js';
import type { AwsClients } from '../services/aws/clients.js';
import { readJobIdentity } from '../services/runner/job-hooks.js';
import type { RunnerReaper } from '../services/runner/reaper.js';
import type { Logger, LogRoute } from '../services/logs/logger.js';
import type { SecretVault } from '../services/secrets.js';
import { cleanup } from './cleanup.js';
import { downloadRunner, prefetchRunner, uploadRunnerCache } from './download-runner.js';
import { inspectJob } from './inspect-job.js';
import { isolateJob } from './isolate-job.js';
import { prepareJob } from './prepare-job.js';
import { uploadRunnerLogs } from './upload-runner-logs.js';
import { logShipper } from './log-shipper.js';
import { processWatcher } from './process-watcher.js';
import { readRunnerConfig } from './read-runner-config.js';
import { registerRunner } from './register-runner.js';
import { resolveIdentity } from './resolve-identity.js';
import { resolveRunnerUser } from './resolve-runner-user.js';
import { resourceMonitor } from './resource-monitor.js';
import { runnerProcess } from './runner-process.js';
import { sendTelemetry } from './send-telemetry.js';
import { spotWatcher } from './spot-watcher.js';
import { terminateInstance } from './terminate-instance.js';

export interface AgentDeps {
  logger: Logger;
  vault: SecretVault;
  aws: AwsClients;
  /** Where the logger and the runner's output write; the log shipper's actor attaches to it. */
  route: LogRoute;
  /** Kills the runner's session if the agent dies without cleaning up. */
  reaper?: RunnerReaper;
  /** Echo of each (redacted) runner line into the agent's own log, beside CloudWatch. */
  echoRunnerLine?: (line: string, timestampMs: number, stream: 'stdout' | 'stderr') => void;
  /** Shown in the job's "Set up job" step (.setup_info). */
  agentVersion: string;
  /** A full garbage collection (bin/heap.ts), for the log shipper after a flood through its spill file. */
  reclaimMemory?: () => void;
}

/** IMDSv2 client: short timeouts so a missing IMDS fails in seconds, not minutes. */
export function metadataClient(): MetadataService {
  return new MetadataService({ httpOptions: { timeout: 2000 }, retries: 2, backoff: 0.3, ec2MetadataV1Disabled: true });
}

/** IMDS for what the job's log shows (.setup_info): one short try per field, never holding the job. */
export function factsMetadataClient(): MetadataService {
  return new MetadataService({ httpOptions: { timeout: 1000 }, retries: 0, ec2MetadataV1Disabled: true });
}

export function createActors(deps: AgentDeps): typeof actorContracts {
  const { logger, vault, aws, route, echoRunnerLine, reaper } = deps;
  const imds = metadataClient;
  return {
    resolveIdentity: resolveIdentity({ imds }),
    readRunnerConfig: readRunnerConfig({ ssm: aws.ssm, vault, logger }),
    downloadRunner: downloadRunner({ logger, s3: aws.s3 }),
    prefetchRunner: prefetchRunner({ logger, s3: aws.s3 }),
    uploadRunnerCache: uploadRunnerCache({ logger, s3: aws.s3 }),
    prepareJob: prepareJob({ logger, imds: factsMetadataClient, agentVersion: deps.agentVersion }),
    resolveRunnerUser: resolveRunnerUser({ logger }),
    isolateJob: isolateJob({ logger }),
    inspectJob: inspectJob({ logger }),
    uploadRunnerLogs: uploadRunnerLogs({ logger, s3: aws.s3 }),
    registerRunner: registerRunner({ logger, vault, onSpawn: (pid) => reaper?.watch(pid) }),
    runnerProcess: runnerProcess({
      logger,
      vault,
      onSpawn: (pid, cgroupDir) => {
        reaper?.watch(pid);
        if (cgroupDir) reaper?.watchCgroup(cgroupDir);
      },
      onLine: (line, timestampMs, stream, continued) => {
        route.runnerLine(line, timestampMs, continued);
        echoRunnerLine?.(line, timestampMs, stream);
      },
    }),
    sendTelemetry: sendTelemetry({ logger, vault, sqs: aws.sqs, jobIdentity: (stateDir) => readJobIdentity(stateDir) }),
    cleanup: cleanup({ logger }),
    terminateInstance: terminateInstance({ ec2: aws.ec2, logger }),
    processWatcher: processWatcher({ logger }),
    spotWatcher: spotWatcher({ imds, logger }),
    resourceMonitor: resourceMonitor({ logger }),
    logShipper: logShipper({ route, logs: aws.logs, logger, vault, reclaim: deps.reclaimMemory }),
  } as typeof actorContracts;
}
