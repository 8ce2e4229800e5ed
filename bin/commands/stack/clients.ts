/**
 * The AWS SDK clients the `--stack` backend talks through, one set per Region. Credentials come
 * from the SDK's default provider chain; throttling is retried by the SDK's standard retry
 * strategy (3 attempts by default) before an error reaches the command.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SNSClient } from '@aws-sdk/client-sns';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface CloudClients {
  /** finds the stack and its outputs (DescribeStacks) */
  readonly cloudFormation: CloudFormationClient;
  /** the desired-state table, read through aws/repository.ts */
  readonly dynamo: DynamoDBDocumentClient;
  /** puts the Block/Unblock Requested events */
  readonly events: EventBridgeClient;
  /** reads the IP sets (CLOUDFRONT-scope sets live in us-east-1) */
  readonly waf: (region: string) => WAFV2Client;
  /** reads the network ACLs */
  readonly ec2: EC2Client;
  /** each sensor's heartbeats (GetMetricData) and its heartbeat alarm (DescribeAlarms) */
  readonly cloudWatch: CloudWatchClient;
  /**
   * CloudWatch in a given Region, for the WAF rule metrics (CLOUDFRONT-scope metrics are in
   * us-east-1); left out: `cloudWatch` serves its own Region and other Regions are reported unavailable
   */
  readonly metrics?: (region: string) => CloudWatchClient;
  /** publishes a test message to the alarm topic (selftest); tests that never publish may leave it out */
  readonly sns?: SNSClient;
}

/** SDK clients for one Region (undefined: the SDK's own Region lookup). */
export function cloudClients(region: string | undefined): CloudClients {
  // The SDK warns on every run that its 2027 releases will need Node.js 22; portsnare supports 20.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const config = region ? { region } : {};
  const wafClients = new Map<string, WAFV2Client>();
  const metricClients = new Map<string, CloudWatchClient>();
  const cloudWatch = new CloudWatchClient(config);
  return {
    cloudFormation: new CloudFormationClient(config),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient(config), { marshallOptions: { removeUndefinedValues: true } }),
    events: new EventBridgeClient(config),
    waf: (wafRegion) => {
      let client = wafClients.get(wafRegion);
      if (!client) wafClients.set(wafRegion, (client = new WAFV2Client({ region: wafRegion })));
      return client;
    },
    ec2: new EC2Client(config),
    cloudWatch,
    metrics: (metricsRegion) => {
      let client = metricClients.get(metricsRegion);
      if (!client) metricClients.set(metricsRegion, (client = new CloudWatchClient({ region: metricsRegion })));
      return client;
    },
    sns: new SNSClient(config),
  };
}

export function closeClients(clients: CloudClients): void {
  clients.cloudFormation.destroy();
  clients.dynamo.destroy();
  clients.events.destroy();
  clients.ec2.destroy();
  clients.cloudWatch.destroy();
  clients.sns?.destroy();
}
