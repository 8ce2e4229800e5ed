/**
 * The one place that holds portsnare's Lambda defaults (ARCHITECTURE.md, lib/):
 * a current Node.js runtime on ARM64, esbuild bundling with source maps, an explicit log group
 * with retention, a role that may write only to that log group, an on-failure destination for
 * asynchronous invocations and an alarm on errors.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { LogLevel, NodejsFunction, OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_NAMESPACE, SERVICE_NAME } from '../core/metrics';
import { acknowledge } from './nag';

/** The repository root: lambda/ entry points and the lock file live there. */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** The function names of lambda/<name>/handler.ts. */
export type PortsnareFunctionName = 'decide' | 'enforce' | 'expiry' | 'reconcile' | 'cleanup' | 'flowlogs';

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
  public readonly function: NodejsFunction;
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

    this.function = new NodejsFunction(this, 'Function', {
      entry: path.join(PROJECT_ROOT, 'lambda', props.name, 'handler.ts'),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
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
      bundling: PortsnareFunction.bundling(),
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
   * Bundling shared by every function: esbuild on this machine (never Docker), minified, with
   * source maps so stack traces point at the TypeScript. The AWS SDK v3 is bundled
   * (`externalModules: []`), not taken from the runtime: a function runs the SDK version the
   * repository's lock file pins and its tests ran with. lambda/shared/clients.ts loads each
   * client's SDK only when the function first uses it (bench/bundles.bench.ts measures the cold load).
   */
  static bundling(): BundlingOptions {
    return {
      forceDockerBundling: false,
      minify: true,
      sourceMap: true,
      sourcesContent: false,
      target: 'node22',
      format: OutputFormat.CJS,
      externalModules: [],
      // The packages' ES module builds first: esbuild drops the commands a function never uses
      // (the SDK clients are large; the output is still CommonJS).
      mainFields: ['module', 'main'],
      logLevel: LogLevel.ERROR,
    };
  }
}
