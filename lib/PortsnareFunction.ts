/**
 * The one place that holds portsnare's Lambda defaults (ARCHITECTURE.md, lib/):
 * a current Node.js runtime on ARM64, the function's esbuild bundle (scripts/bundle-lambda.ts) with
 * source maps, an explicit log group with retention, a role that may write only to that log group, an on-failure destination for
 * asynchronous invocations and an alarm on errors.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AssetHashType, DockerImage, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, SERVICE_NAME } from '../core/metrics';
import { acknowledge } from './nag';

/** The repository root: lambda/ entry points and the lock file live there. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The function names of lambda/<name>/handler.ts. */
export type PortsnareFunctionName = 'decide' | 'enforce' | 'expiry' | 'reconcile' | 'cleanup' | 'flowlogs' | 'digest' | 'findings';

export interface PortsnareFunctionProps {
  /** which lambda/<name>/handler.ts to bundle */
  readonly name: PortsnareFunctionName;
  /** what the function does, for the console */
  readonly description: string;
  /**
   * Environment beyond the shared POWERTOOLS_* variables.
   * @default {}
   */
  readonly environment?: Record<string, string>;
  /**
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Where asynchronous invocations that still fail after Lambda's retries go. Leave unset for
   * functions invoked synchronously (an SQS event source, a custom resource provider): their
   * caller owns the retry and the dead-letter queue.
   * @default - none
   */
  readonly onFailure?: sqs.IQueue;
  /**
   * Retries of a failed asynchronous invocation (0–2).
   * @default 2
   */
  readonly retryAttempts?: number;
  /**
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.DESTROY
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Where the error alarm notifies.
   * @default - the alarm has no action (it still shows in the console and the dashboard)
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
  /**
   * Reserved concurrency.
   * @default - unreserved
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * A fixed name for the function's role, so a policy in another account can name it (an
   * organization's enforcement plane, lib/org/).
   * @default - a generated name
   */
  readonly roleName?: string;
}

/** Node.js 22 on Graviton: the runtime the repository's engines and CI test with. */
export const PORTSNARE_RUNTIME = lambda.Runtime.NODEJS_22_X;

export class PortsnareFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;
  public readonly errorsAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: PortsnareFunctionProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.seconds(30);
    const retryAttempts = props.retryAttempts ?? 2;
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 2) {
      throw new Error(`PortsnareFunction ${props.name}: retryAttempts must be 0, 1 or 2 (got ${retryAttempts})`);
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.DESTROY,
    });

    // A role of our own instead of AWSLambdaBasicExecutionRole: it may write to this function's
    // log group and nothing else (no logs:CreateLogGroup on `*`).
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `portsnare ${props.name} function`,
      roleName: props.roleName,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new lambda.Function(this, 'Function', {
      code: PortsnareFunction.code(props.name),
      handler: 'index.handler',
      runtime: PORTSNARE_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      timeout,
      memorySize: props.memorySize ?? 256,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      environment: {
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRIC_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      onFailure: props.onFailure ? new destinations.SqsDestination(props.onFailure) : undefined,
      retryAttempts: props.onFailure ? retryAttempts : undefined,
    });

    this.errorsAlarm = new cloudwatch.Alarm(this, 'ErrorsAlarm', {
      alarmDescription: `portsnare ${props.name}: the function reported errors`,
      metric: this.function.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmAction) this.errorsAlarm.addAlarmAction(props.alarmAction);

    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'Pinned to Node.js 22, the runtime the repository (engines, CI) is tested on; moving to a newer runtime is a deliberate, tested change, not an automatic one.',
    );
  }

  /**
   * The function's bundle (scripts/bundle-lambda.ts), built on this machine at synth (never in
   * Docker): lambda/<name>/handler.ts with the AWS SDK bundled, not taken from the runtime, so a
   * function runs the SDK version the lock file pins and the tests ran with; minified, with a
   * source map. The asset's hash is the bundle's (AssetHashType.OUTPUT): a change elsewhere in the
   * repository does not redeploy a function whose bundle did not change.
   */
  static code(name: PortsnareFunctionName): lambda.Code {
    return lambda.Code.fromAsset(path.join(PROJECT_ROOT, 'lambda', name), {
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        // Never pulled: local bundling always succeeds or throws with esbuild's own error.
        image: DockerImage.fromRegistry('portsnare-local-bundling-only'),
        local: {
          tryBundle(outputDir: string): boolean {
            buildFunctionBundle(name, outputDir);
            return true;
          },
        },
      },
    });
  }
}

/** Writes lambda/<name>'s bundle into `outputDir` through scripts/bundle-lambda.ts, run by tsx as in a clone. */
export function buildFunctionBundle(name: PortsnareFunctionName, outputDir: string): void {
  const tsx = require.resolve('tsx/cli', { paths: [PROJECT_ROOT] });
  const built = spawnSync(process.execPath, [tsx, path.join(PROJECT_ROOT, 'scripts', 'bundle-lambda.ts'), name, outputDir], { cwd: PROJECT_ROOT, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`the ${name} function's bundle did not build (scripts/bundle-lambda.ts): ${built.error?.message ?? built.stderr.trim()}`);
  if (!fs.existsSync(path.join(outputDir, 'index.js'))) throw new Error(`the ${name} function's bundle has no index.js`);
}
