/**
 * `portsnare selftest --stack NAME` (and `--org` for an organization's decision stack): after a
 * deploy, proves the deployment end to end, from what its outputs (core/outputs.ts) name:
 *
 * 1. the canary (`PortsnareCanaryAddress`, core/selftest.ts) is blocked by an operator request
 *    (`Block Requested` from portsnare.cli on the bus, the same event `portsnare block` sends) and
 *    observed in every WAF IP set and every configured network ACL (portsnare's own entry, by its
 *    placement ledger: placements.ts) of every plane, within the timeout; then lifted (`Unblock
 *    Requested`) and observed gone from every one of them;
 * 2. every alarm topic (`PortsnareAlarmTopicArn`) accepts a test publish (SNS Publish);
 * 3. each cloud sensor's heartbeat metric exists (`PortsnareSensors`): CloudWatch ListMetrics for
 *    AWS/Events MatchedEvents with the rule's dimensions, recently active (data in the last 3 h).
 *    https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_ListMetrics.html
 *    ("RecentlyActive … PT3H … the only valid value"; Dimensions filter the results, a metric
 *    with more dimensions than the filter also matches, so the dimensions are compared here).
 *
 * Each check is ok, failed (named, with its cause) or skipped (with why); any failed check is exit
 * 6. A plane is its stack's IP sets, ACLs and ledger: the single-account stack is one plane; with
 * `--org` each plane's stack (`PortsnarePlaneStacks`) is read in its Region with the caller's
 * credentials.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Stack } from '@aws-sdk/client-cloudformation';
import { ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeNetworkAclsCommand } from '@aws-sdk/client-ec2';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetIPSetCommand } from '@aws-sdk/client-wafv2';
import { canonicalTarget, familyOf } from '../../../core/address';
import { DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED } from '../../../core/commands';
import { EVENT_SOURCE_CLI } from '../../../core/event';
import { NeverBlockGuard } from '../../../core/guard';
import { ownEntryTarget, withOwnership } from '../../../core/nacl';
import { EMPTY_LIST_OUTPUT, listOutput, SENSOR_HEARTBEAT_METRIC, type SensorListing, STACK_OUTPUTS } from '../../../core/outputs';
import { CANARY_REASON, CANARY_TTL_SECONDS } from '../../../core/selftest';
import type { PipelineSettings } from '../../../core/settings';
import { fromSdkEntry } from '../../../aws/nacl-adapter';
import { errorName } from '../../../aws/retry';
import { PlacementLedger } from '../../../aws/repository';
import { CliError, EXIT } from '../errors';
import { awsError, messageOf, regionOf } from './aws-errors';
import { type CloudClients, closeClients } from './clients';
import { describeStack, stackStatusHealthy } from './describe';
import { type IpSetRef, parseIpSetArn } from './placements';
import { sensorsOfStack } from './sensors';
import { settingsOfStack, stackOutput } from './settings';

export type CheckState = 'ok' | 'failed' | 'skipped';

export interface Check {
  readonly name: string;
  readonly state: CheckState;
  readonly detail: string;
}

export interface SelftestReport {
  readonly where: string;
  readonly canary?: string;
  readonly ok: boolean;
  readonly checks: readonly Check[];
}

export interface SelftestOptions {
  readonly org: boolean;
  readonly timeoutSeconds: number;
  /** between two reads of every point */
  readonly pollMs: number;
  /** who asks (requester.ts) */
  readonly requestedBy: string;
  /** each check as it completes */
  readonly onCheck?: (check: Check) => void;
}

/** One place the canary must show in: a WAF IP set or a network ACL of one plane. */
interface Point {
  readonly label: string;
  /** whether it holds the canary now; throws an AWS error when it cannot be read */
  holds(canaryTarget: string): Promise<boolean>;
  /** whether a block of the canary lands here: not in an IP set of the other address family (it is still read) */
  takes(canaryTarget: string): boolean;
}

interface Plane {
  readonly label: string;
  readonly points: readonly Point[];
  readonly alarmTopic?: string;
}

/** A check failed in a way that ends the run (nothing after it can be proven). */
class Stop extends Error {}

export async function runSelftest(cloud: (region: string | undefined) => CloudClients, stackName: string, region: string | undefined, options: SelftestOptions): Promise<SelftestReport> {
  const checks: Check[] = [];
  const opened: CloudClients[] = [];
  const clientsFor = (where: string | undefined): CloudClients => {
    const clients = cloud(where);
    opened.push(clients);
    return clients;
  };
  const record = (name: string, state: CheckState, detail: string): Check => {
    const check = { name, state, detail };
    checks.push(check);
    options.onCheck?.(check);
    return check;
  };
  const clients = clientsFor(region);
  let where = `stack ${stackName}`;
  let canary: string | undefined;
  try {
    const stackRegion = await regionOf(clients.cloudFormation);
    where = `${options.org ? 'decision stack' : 'stack'} ${stackName} (${stackRegion})`;
    const stack = await describeStack(clients, stackName, stackRegion);
    const status = stack.StackStatus ?? 'UNKNOWN';
    record('stack', stackStatusHealthy(status) ? 'ok' : 'failed', `${stackName} ${status}${stackStatusHealthy(status) ? '' : ' (not a *_COMPLETE state: finish or fix the deploy first)'}`);
    const bus = stackOutput(stack, STACK_OUTPUTS.bus);
    if (!bus) throw new CliError(`stack ${stackName} in ${stackRegion} has no ${STACK_OUTPUTS.bus} output: is it a portsnare ${options.org ? 'decision ' : ''}stack?`, EXIT.notFound);
    const settings = settingsOfStack(stack, stackName);
    canary = canaryOf(stack, stackName, settings, record);
    const planes = options.org ? await orgPlanes(stack, stackName, clientsFor, record) : [singlePlane(stack, stackName, settings, clients)];
    if (canary !== undefined) await canaryRound(clients, bus, canary, planes, options, record);
    const planeTopics = options.org ? planes.map((plane) => ({ label: plane.label, ...(plane.alarmTopic ? { arn: plane.alarmTopic } : {}) })) : [];
    await alarmTopics(clients, [{ label: stackName, ...topicOf(stack) }, ...planeTopics], record);
    await heartbeats(clients, stack, stackName, record);
  } catch (error) {
    if (!(error instanceof Stop)) throw error;
  } finally {
    for (const opened1 of opened) closeClients(opened1);
  }
  return { where, ...(canary !== undefined ? { canary } : {}), ok: checks.every((check) => check.state !== 'failed'), checks };
}

/** The canary from the stack's output, checked against the stack's own guard. */
function canaryOf(stack: Stack, stackName: string, settings: PipelineSettings, record: (name: string, state: CheckState, detail: string) => Check): string | undefined {
  const value = stackOutput(stack, STACK_OUTPUTS.canary);
  if (value === undefined) {
    record('canary', 'failed', `stack ${stackName} has no ${STACK_OUTPUTS.canary} output (deployed by an older portsnare): redeploy this version`);
    return undefined;
  }
  if (value === EMPTY_LIST_OUTPUT) {
    record('canary', 'failed', 'the stack has no canary (portsnare.selftest.canaryAddress is false): set one and redeploy');
    return undefined;
  }
  const target = canonicalTarget(value);
  if (target === undefined) {
    record('canary', 'failed', `output ${STACK_OUTPUTS.canary} ${JSON.stringify(value)} is not an address`);
    return undefined;
  }
  const verdict = new NeverBlockGuard(settings.guard).check(target);
  if (!verdict.blockable) {
    record('canary', 'failed', `the stack's own guard refuses the canary ${target}: ${verdict.rule}`);
    return undefined;
  }
  return target;
}

function topicOf(stack: Stack): { arn?: string } {
  const arn = stackOutput(stack, STACK_OUTPUTS.alarmTopic);
  return arn === undefined || arn === EMPTY_LIST_OUTPUT ? {} : { arn };
}

function ipSetPoints(stack: Stack, stackName: string, settings: PipelineSettings, clients: CloudClients, prefix: string): Point[] {
  // an ARN the CLI cannot parse is a point that fails, naming the stack and the value
  return listOutput(stackOutput(stack, STACK_OUTPUTS.ipSets)).map((arn): Point => {
    const ref: IpSetRef | undefined = parseIpSetArn(arn);
    if (!ref) {
      return {
        label: `${prefix}waf:${arn}`,
        holds: () => Promise.reject(new CliError(`stack ${stackName} output ${STACK_OUTPUTS.ipSets} holds ${JSON.stringify(arn)}, not a WAF IP set ARN`, EXIT.failure)),
        takes: () => true,
      };
    }
    // the set's family from the settings the functions run with (an unlisted set is expected to take it, and fails by name)
    const family = settings.waf.sets.find((set) => set.id === ref.id && set.scope === ref.scope)?.family;
    return {
      label: `${prefix}waf:${ref.name}`,
      takes: (target) => family === undefined || family === familyOf(target.split('/')[0] ?? target),
      async holds(target) {
        const answer = await clients.waf(ref.scope === 'CLOUDFRONT' ? 'us-east-1' : ref.region).send(new GetIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id }));
        return (answer.IPSet?.Addresses ?? []).some((address) => canonicalTarget(address) === target);
      },
    };
  });
}

function aclPoints(settings: PipelineSettings, ledgerTable: string, clients: CloudClients, prefix: string): Point[] {
  const ledger = new PlacementLedger(clients.dynamo, ledgerTable);
  return [...new Set(settings.nacl.aclIds)].map((aclId): Point => ({
    label: `${prefix}nacl:${aclId}`,
    // an ACL holds IPv4 and IPv6 entries alike
    takes: () => true,
    async holds(target) {
      const answer = await clients.ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [aclId] }));
      const acl = answer.NetworkAcls?.[0];
      // portsnare's entry for the target, and this stack's by its ledger (another stack may share the ACL)
      const entries = withOwnership((acl?.Entries ?? []).map(fromSdkEntry), await ledger.list(aclId), settings.nacl.ruleRange);
      return entries.some((entry) => ownEntryTarget(entry, settings.nacl.ruleRange) === target);
    },
  }));
}

/** The single-account stack: its IP sets, its ACLs, its table as the placement ledger. */
function singlePlane(stack: Stack, stackName: string, settings: PipelineSettings, clients: CloudClients): Plane {
  const table = stackOutput(stack, STACK_OUTPUTS.table) ?? '';
  return { label: stackName, points: [...ipSetPoints(stack, stackName, settings, clients, ''), ...aclPoints(settings, table, clients, '')] };
}

/** Every plane's stack, each read in its own Region; a plane that cannot be read fails its check. */
async function orgPlanes(stack: Stack, stackName: string, clientsFor: (region: string) => CloudClients, record: (name: string, state: CheckState, detail: string) => Check): Promise<Plane[]> {
  const text = stackOutput(stack, STACK_OUTPUTS.planeStacks);
  if (text === undefined) {
    record('planes', 'failed', `the stack has no ${STACK_OUTPUTS.planeStacks} output: is it an organization's decision stack (deployed by this version)?`);
    throw new Stop();
  }
  let listed: Record<string, unknown>;
  try {
    listed = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new CliError(`stack ${stackName} output ${STACK_OUTPUTS.planeStacks} is not JSON: ${messageOf(error)}`, EXIT.failure);
  }
  const planes: Plane[] = [];
  for (const [id, planeStack] of Object.entries(listed)) {
    const planeRegion = id.split('/')[1] ?? '';
    if (typeof planeStack !== 'string' || planeRegion === '') throw new CliError(`stack ${stackName} output ${STACK_OUTPUTS.planeStacks}: ${JSON.stringify(id)} → ${JSON.stringify(planeStack)} is not a plane id and stack name`, EXIT.failure);
    const clients = clientsFor(planeRegion);
    try {
      const described = await describeStack(clients, planeStack, planeRegion);
      const settings = settingsOfStack(described, planeStack);
      const ledger = stackOutput(described, STACK_OUTPUTS.ledgerTable);
      if (!ledger) throw new CliError(`plane stack ${planeStack} has no ${STACK_OUTPUTS.ledgerTable} output (deployed by an older portsnare)`, EXIT.notFound);
      const prefix = `${id} `;
      const topic = topicOf(described).arn;
      planes.push({ label: id, points: [...ipSetPoints(described, planeStack, settings, clients, prefix), ...aclPoints(settings, ledger, clients, prefix)], ...(topic ? { alarmTopic: topic } : {}) });
      record(`plane ${id}`, 'ok', `stack ${planeStack} in ${planeRegion}`);
    } catch (error) {
      const failure = awsError(error, `describe plane stack ${planeStack} in ${planeRegion}`);
      record(`plane ${id}`, 'failed', `${failure.message} (the caller's credentials must reach the plane's account)`);
    }
  }
  return planes;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Reads every point; a point that cannot be read is an error naming it. */
async function readAll(points: readonly Point[], target: string): Promise<Map<string, boolean | Error>> {
  const results = await Promise.all(
    points.map(async (point): Promise<[string, boolean | Error]> => {
      try {
        return [point.label, await point.holds(target)];
      } catch (error) {
        return [point.label, error instanceof Error ? error : new Error(String(error))];
      }
    }),
  );
  return new Map(results);
}

function unreadable(point: string, error: Error): string {
  const name = errorName(error);
  return `${point} cannot be read: ${name && name !== 'Error' && name !== 'CliError' ? `${name}: ` : ''}${error.message}`;
}

/** Polls until every point agrees with `want` (or a point cannot be read, or the time is up). */
async function waitFor(points: readonly Point[], target: string, want: boolean, options: SelftestOptions): Promise<{ ok: boolean; detail: string }> {
  const start = Date.now();
  const deadline = start + options.timeoutSeconds * 1000;
  const seenAt = new Map<string, number>();
  for (;;) {
    const state = await readAll(points, target);
    const errors = [...state.entries()].filter((entry): entry is [string, Error] => entry[1] instanceof Error);
    if (errors.length > 0) return { ok: false, detail: errors.map(([point, error]) => unreadable(point, error)).join('; ') };
    const wanted = (point: Point): boolean => want && point.takes(target);
    for (const point of points) if (state.get(point.label) === wanted(point) && !seenAt.has(point.label)) seenAt.set(point.label, Date.now() - start);
    const pending = points.filter((point) => state.get(point.label) !== wanted(point)).map((point) => point.label);
    if (pending.length === 0) {
      const taking = points.filter((point) => point.takes(target));
      const timing = taking.map((point) => `${point.label} ${Math.round((seenAt.get(point.label) ?? 0) / 1000)}s`).join(', ');
      const others = points.length - taking.length;
      return { ok: true, detail: `${taking.length} point${taking.length === 1 ? '' : 's'} in ${Math.round((Date.now() - start) / 1000)}s (${timing})${others ? `; ${others} IP set${others === 1 ? '' : 's'} of the other family read and without it` : ''}` };
    }
    if (Date.now() >= deadline) {
      return { ok: false, detail: `${want ? 'not in' : 'still in'} ${pending.join(', ')} after ${options.timeoutSeconds}s` };
    }
    await sleep(Math.min(options.pollMs, Math.max(10, deadline - Date.now())));
  }
}

async function putRequest(clients: CloudClients, bus: string, detailType: string, detail: Record<string, unknown>): Promise<string> {
  let answer;
  try {
    answer = await clients.events.send(
      new PutEventsCommand({ Entries: [{ Source: EVENT_SOURCE_CLI, DetailType: detailType, Detail: JSON.stringify(detail), EventBusName: bus }] }),
    );
  } catch (error) {
    throw awsError(error, `put ${detailType} on ${bus}`);
  }
  const entry = answer.Entries?.[0];
  if ((answer.FailedEntryCount ?? 0) > 0 || !entry?.EventId) throw new CliError(`EventBridge refused the ${detailType} event: ${entry?.ErrorCode ?? 'no event id'} ${entry?.ErrorMessage ?? ''}`.trim(), EXIT.failure);
  return entry.EventId;
}

async function canaryRound(
  clients: CloudClients,
  bus: string,
  canary: string,
  planes: readonly Plane[],
  options: SelftestOptions,
  record: (name: string, state: CheckState, detail: string) => Check,
): Promise<void> {
  const points = planes.flatMap((plane) => plane.points);
  if (points.length === 0) {
    record('canary blocked', 'failed', 'the stack lists no WAF IP set and no network ACL: nothing to observe');
    return;
  }
  const unblock = { version: 1, target: canary, requestedBy: options.requestedBy };
  // a canary left by an interrupted selftest is lifted first, so what follows proves this run
  const before = await readAll(points, canary);
  if ([...before.values()].some((value) => value === true)) {
    await putRequest(clients, bus, DETAIL_TYPE_UNBLOCK_REQUESTED, unblock);
    const cleared = await waitFor(points, canary, false, options);
    if (!cleared.ok) {
      record('canary blocked', 'failed', `the canary ${canary} was already in force (an earlier selftest?) and did not leave: ${cleared.detail}`);
      return;
    }
  }
  await putRequest(clients, bus, DETAIL_TYPE_BLOCK_REQUESTED, { version: 1, target: canary, ttlSeconds: CANARY_TTL_SECONDS, reason: CANARY_REASON, requestedBy: options.requestedBy });
  const blocked = await waitFor(points, canary, true, options);
  record('canary blocked', blocked.ok ? 'ok' : 'failed', `${canary}: ${blocked.detail}`);
  // lifted whatever happened: the canary must not stay in force
  await putRequest(clients, bus, DETAIL_TYPE_UNBLOCK_REQUESTED, unblock);
  const lifted = await waitFor(points, canary, false, options);
  record('canary lifted', lifted.ok ? 'ok' : 'failed', `${canary}: ${lifted.detail}${lifted.ok ? '' : ` (its block expires by itself within ${CANARY_TTL_SECONDS / 60} min)`}`);
}

async function alarmTopics(clients: CloudClients, topics: ReadonlyArray<{ label: string; arn?: string }>, record: (name: string, state: CheckState, detail: string) => Check): Promise<void> {
  const sns = clients.sns ?? new SNSClient({ credentials: clients.cloudFormation.config.credentials, region: clients.cloudFormation.config.region });
  for (const topic of topics) {
    const name = topics.length > 1 ? `alarm topic ${topic.label}` : 'alarm topic';
    if (topic.arn === undefined) {
      record(name, 'skipped', 'the stack has no alarm topic (no alarmEmail): alarms notify no one');
      continue;
    }
    try {
      // https://docs.aws.amazon.com/sns/latest/api/API_Publish.html — Subject: ASCII, no line break, at most 100 characters
      const { MessageId: id } = await sns.send(
        new PublishCommand({
          TopicArn: topic.arn,
          Subject: 'portsnare selftest',
          Message: `portsnare selftest of ${topic.label}: the alarm topic accepts publishes. No action needed.`,
        }),
      );
      record(name, 'ok', `${topic.arn} accepted a test publish (message ${id})`);
    } catch (error) {
      const code = errorName(error) ?? 'Error';
      record(name, 'failed', `${topic.arn} refused the test publish: ${code}: ${messageOf(error)}`);
    }
  }
}

const DEFAULT_BUS = 'default';

async function heartbeats(clients: CloudClients, stack: Stack, stackName: string, record: (name: string, state: CheckState, detail: string) => Check): Promise<void> {
  const sensors: SensorListing[] | undefined = sensorsOfStack(stack, stackName);
  if (sensors === undefined) {
    record('sensors', 'skipped', `the stack has no ${STACK_OUTPUTS.sensors} output`);
    return;
  }
  if (sensors.length === 0) {
    record('sensors', 'skipped', 'the stack has no cloud sensor');
    return;
  }
  for (const sensor of sensors) {
    const dimensions = [...(sensor.busName === DEFAULT_BUS ? [] : [{ Name: 'EventBusName', Value: sensor.busName }]), { Name: 'RuleName', Value: sensor.ruleName }];
    const wanted = JSON.stringify(dimensions.map((d) => [d.Name, d.Value]).sort());
    let found = false;
    let token: string | undefined;
    try {
      do {
        const answer = await clients.cloudWatch.send(
          new ListMetricsCommand({
            Namespace: SENSOR_HEARTBEAT_METRIC.namespace,
            MetricName: SENSOR_HEARTBEAT_METRIC.metricName,
            Dimensions: dimensions,
            RecentlyActive: 'PT3H',
            ...(token ? { NextToken: token } : {}),
          }),
        );
        found ||= (answer.Metrics ?? []).some((metric) => JSON.stringify((metric.Dimensions ?? []).map((d) => [d.Name, d.Value]).sort()) === wanted);
        token = answer.NextToken;
      } while (token && !found);
    } catch (error) {
      record(`sensor ${sensor.sensorId}`, 'failed', awsError(error, `list the heartbeat metric (cloudwatch:ListMetrics on ${SENSOR_HEARTBEAT_METRIC.namespace} ${SENSOR_HEARTBEAT_METRIC.metricName})`).message);
      continue;
    }
    const metric = `${SENSOR_HEARTBEAT_METRIC.namespace} ${SENSOR_HEARTBEAT_METRIC.metricName} ${dimensions.map((d) => `${d.Name}=${d.Value}`).join(' ')}`;
    record(
      `sensor ${sensor.sensorId}`,
      found ? 'ok' : 'failed',
      found ? `heartbeat metric ${metric} has data in the last 3 h` : `no heartbeat: CloudWatch lists no ${metric} with data in the last 3 h (the sensor never sent one, or not lately)`,
    );
  }
}
