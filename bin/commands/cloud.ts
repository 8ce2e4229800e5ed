/**
 * The `--stack NAME` backend: a deployed EnumerationBlocker, found through CloudFormation.
 *
 * Reads go to the stack's DynamoDB table (the desired state: `BLOCK#<target>`/`STATE` records,
 * `HIST#…` history, the sparse `active` index). Changes never touch the table or WAF/NACL: they go
 * as `portsnare.cli` events ("Block Requested" / "Unblock Requested") on the stack's bus, so the
 * decide function validates them and the enforce function stays the one writer.
 */
import { CloudFormationClient, DescribeStackResourceCommand, DescribeStacksCommand, GetTemplateCommand, type Stack } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeNetworkAclsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetIPSetCommand, WAFV2Client } from '@aws-sdk/client-wafv2';
import { DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { type Family, tryParseCidr } from '../../core/address';
import { DETAIL_TYPE_BLOCK_REQUESTED, DETAIL_TYPE_UNBLOCK_REQUESTED } from '../../core/commands';
import { EVENT_SOURCE_CLI } from '../../core/event';
import { type GuardSettings, GuardSettingsSchema, NeverBlockGuard } from '../../core/guard';
import { minuteOf } from '../../core/policy';
import { SETTINGS_ENV } from '../../core/settings';
import type { Backend, BlockOutcome, BlockRequest, BlockView, HistoryView, StatusView, UnblockOutcome } from './backend';
import { byExpiry } from './backend';
import { CliError, EXIT } from './errors';
import { isoSeconds } from './output';

export const OUTPUT_TABLE = 'PortsnareTableName';
export const OUTPUT_BUS = 'PortsnareEventBusName';
export const OUTPUT_IP_SETS = 'PortsnareIpSetArns';

interface StackSettings {
  readonly guard: NeverBlockGuard;
  readonly source: string;
  readonly burstLimitPerMinute?: number;
  readonly nacl?: { readonly aclIds: readonly string[]; readonly ruleRange: readonly [number, number] };
}

interface IpSetRef {
  readonly scope: 'REGIONAL' | 'CLOUDFRONT';
  readonly region: string;
  readonly name: string;
  readonly id: string;
}

/** arn:aws:wafv2:eu-west-1:111122223333:regional/ipset/NAME/ID (global/… for CloudFront) */
export function parseIpSetArn(arn: string): IpSetRef | undefined {
  const match = /^arn:aws[\w-]*:wafv2:([\w-]+):\d{12}:(regional|global)\/ipset\/([\w-]+)\/([\w-]+)$/.exec(arn);
  if (!match) return undefined;
  return { region: match[1] ?? '', scope: match[2] === 'global' ? 'CLOUDFRONT' : 'REGIONAL', name: match[3] ?? '', id: match[4] ?? '' };
}
export const ACTIVE_INDEX = 'active';
export const ACTIVE_KEY = 'ACTIVE';

export interface CloudClients {
  readonly cloudFormation: CloudFormationClient;
  readonly dynamo: DynamoDBDocumentClient;
  readonly events: EventBridgeClient;
  /** reads the IP sets (CLOUDFRONT-scope sets live in us-east-1) */
  readonly waf: (region: string) => WAFV2Client;
  /** reads the network ACLs */
  readonly ec2: EC2Client;
}

/** SDK clients for one Region; credentials come from the default provider chain. */
export function cloudClients(region: string | undefined): CloudClients {
  // The SDK warns on every run that its 2027 releases will need Node.js 22; portsnare supports 20.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const config = region ? { region } : {};
  const wafClients = new Map<string, WAFV2Client>();
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
  };
}

/** Who asked: recorded by the decide function with the request. */

type Item = Record<string, unknown>;

export class StackBackend implements Backend {
  readonly where: string;
  private settingsPromise: Promise<StackSettings> | undefined;

  private constructor(
    private readonly clients: CloudClients,
    readonly stackName: string,
    readonly region: string,
    private readonly stack: Stack,
    readonly tableName: string,
    readonly busName: string,
    private readonly waitSeconds: number,
    private readonly now: () => number,
  ) {
    this.where = `stack ${stackName} (${region})`;
  }

  /** Finds the stack and its outputs; an unknown stack or a stack without them is an error. */
  static async open(clients: CloudClients, stackName: string, options: { waitSeconds?: number; now?: () => number } = {}): Promise<StackBackend> {
    const region = await regionOf(clients.cloudFormation);
    let stack: Stack | undefined;
    try {
      const answer = await clients.cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
      stack = answer.Stacks?.[0];
    } catch (error) {
      if (isNamed(error, 'ValidationError') && /does not exist/i.test(messageOf(error))) {
        throw new CliError(`unknown stack ${JSON.stringify(stackName)} in ${region}: no such CloudFormation stack (check --stack and --region / AWS_REGION)`, EXIT.notFound);
      }
      throw awsError(error, `describe stack ${stackName}`);
    }
    if (!stack) throw new CliError(`unknown stack ${JSON.stringify(stackName)} in ${region}`, EXIT.notFound);
    const output = (key: string): string | undefined => stack?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
    const tableName = output(OUTPUT_TABLE);
    const busName = output(OUTPUT_BUS);
    if (!tableName || !busName) {
      const missing = [tableName ? undefined : OUTPUT_TABLE, busName ? undefined : OUTPUT_BUS].filter(Boolean).join(' and ');
      throw new CliError(`stack ${stackName} in ${region} has no ${missing} output: is it a portsnare stack (EnumerationBlocker)?`, EXIT.notFound);
    }
    return new StackBackend(clients, stackName, region, stack, tableName, busName, options.waitSeconds ?? 0, options.now ?? Date.now);
  }

  close(): Promise<void> {
    this.clients.cloudFormation.destroy();
    this.clients.dynamo.destroy();
    this.clients.events.destroy();
    this.clients.ec2.destroy();
    return Promise.resolve();
  }

  async status(now: number): Promise<StatusView> {
    const active = await this.activeRecords(now);
    const burst = await this.get('BURST', `MINUTE#${minuteOf(now)}`);
    const blocksThisMinute = numberOr(burst?.['count'] ?? burst?.['blocks'], 0);
    const { source, burstLimitPerMinute: limit } = await this.settings();
    const breakerOpen = limit !== undefined && blocksThisMinute >= limit;
    const stackStatus = this.stack.StackStatus ?? 'UNKNOWN';
    const healthy = /_COMPLETE$/.test(stackStatus) && !/ROLLBACK|DELETE/.test(stackStatus) && !breakerOpen;
    const lastBlock = active.reduce((latest, block) => Math.max(latest, block.blockedAt), 0);
    const outputs = Object.fromEntries((this.stack.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
    return {
      where: this.where,
      healthy,
      lines: [
        ['stack', `${this.stackName} ${stackStatus} (${this.region})`],
        ['table', this.tableName],
        ['event bus', this.busName],
        ['active blocks', String(active.length)],
        ['last block', lastBlock > 0 ? isoSeconds(lastBlock) : 'none active'],
        [
          'circuit breaker',
          limit === undefined
            ? `${blocksThisMinute} new blocks this minute (it opens at the stack's burstLimitPerMinute)`
            : breakerOpen
              ? `OPEN: ${blocksThisMinute} new blocks this minute, limit ${limit} — new blocks are refused until the minute drains (README: "When the circuit breaker opens")`
              : `closed: ${blocksThisMinute} of ${limit} new blocks this minute`,
        ],
        ['never-block guard', source],
        ['detections', 'CloudWatch metric Portsnare/Detections (the stack dashboard)'],
      ],
      data: {
        backend: 'stack',
        stack: this.stackName,
        region: this.region,
        stackStatus,
        healthy,
        table: this.tableName,
        eventBus: this.busName,
        activeBlocks: active.length,
        blocksThisMinute,
        burstLimitPerMinute: limit ?? null,
        circuitBreakerOpen: breakerOpen,
        lastBlockAt: lastBlock > 0 ? new Date(lastBlock).toISOString() : null,
        guardSource: source,
        outputs,
      },
    };
  }

  async blocks(now: number): Promise<BlockView[]> {
    return this.withPlacements((await this.activeRecords(now)).sort(byExpiry));
  }

  async block(request: BlockRequest): Promise<BlockOutcome> {
    const { guard, source } = await this.guard();
    const verdict = guard.check(request.target);
    if (!verdict.blockable) {
      throw new CliError(`refused: ${request.target} is protected by ${verdict.rule} (never-block guard from ${source}); nothing was sent`, EXIT.refused);
    }
    const detail = {
      version: 1,
      target: request.target,
      ...(request.ttlSeconds !== undefined ? { ttlSeconds: request.ttlSeconds } : {}),
      ...(request.reason !== undefined ? { reason: request.reason } : {}),
      requestedBy: request.requestedBy,
    };
    const eventId = await this.put(DETAIL_TYPE_BLOCK_REQUESTED, detail);
    if (this.waitSeconds > 0) {
      const record = await this.waitFor(request.target, (item) => item?.['active'] === true && numberOr(item['expiresAt'], 0) > this.now());
      if (!record) {
        throw new CliError(
          `block of ${request.target} requested (event ${eventId}) but not in the table after ${this.waitSeconds}s: see the decide function's logs (Refused metric) and the DLQs`,
          EXIT.failure,
        );
      }
      const [block] = await this.withPlacements([toView(record)]);
      return { kind: 'applied', block: block ?? toView(record) };
    }
    return { kind: 'requested', eventId, bus: this.busName };
  }

  async unblock(target: string, requestedBy: string): Promise<UnblockOutcome> {
    const current = await this.get(`BLOCK#${target}`, 'STATE');
    if (!current || current['active'] !== true || numberOr(current['expiresAt'], 0) <= this.now()) {
      throw new CliError(`${target} is not blocked in ${this.where}: no active block record`, EXIT.notFound);
    }
    const eventId = await this.put(DETAIL_TYPE_UNBLOCK_REQUESTED, { version: 1, target, requestedBy });
    if (this.waitSeconds > 0) {
      const lifted = await this.waitFor(target, (item) => !item || item['active'] !== true);
      if (lifted === undefined) {
        throw new CliError(`unblock of ${target} requested (event ${eventId}) but still active after ${this.waitSeconds}s: see the decide function's logs`, EXIT.failure);
      }
      return { kind: 'lifted', target };
    }
    return { kind: 'requested', eventId, bus: this.busName };
  }

  async history(target: string): Promise<{ current?: BlockView; entries: HistoryView[] }> {
    const items: Item[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.send('read history', () =>
        this.clients.dynamo.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': `BLOCK#${target}` },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      items.push(...((page.Items ?? []) as Item[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const state = items.find((item) => item['sk'] === 'STATE');
    const entries = items
      .filter((item) => typeof item['sk'] === 'string' && item['sk'].startsWith('HIST#'))
      .map(historyEntry)
      .sort((a, b) => a.at - b.at);
    const current = state ? (await this.withPlacements([toView(state)]))[0] : undefined;
    return { ...(current ? { current } : {}), entries };
  }

  /**
   * The guard the decide function applies and the ACLs it writes, read from the stack's template
   * (the functions' PORTSNARE_SETTINGS), so a refusal names the same rule the pipeline would.
   * When the template cannot be read, the built-in defaults apply (special ranges never blocked).
   */
  async guard(): Promise<{ guard: NeverBlockGuard; source: string }> {
    const settings = await this.settings();
    return { guard: settings.guard, source: settings.source };
  }

  private settings(): Promise<StackSettings> {
    this.settingsPromise ??= this.loadSettings();
    return this.settingsPromise;
  }

  private async loadSettings(): Promise<StackSettings> {
    let settings: TemplateSettings | undefined;
    try {
      const answer = await this.clients.cloudFormation.send(new GetTemplateCommand({ StackName: this.stackName, TemplateStage: 'Processed' }));
      settings = settingsFromTemplate(answer.TemplateBody ?? '');
    } catch (error) {
      return { guard: NeverBlockGuard.from({}), source: `built-in defaults (template not readable: ${messageOf(error)})` };
    }
    if (!settings) return { guard: NeverBlockGuard.from({}), source: 'built-in defaults (no PORTSNARE_SETTINGS in the template)' };
    // tokens the template could not spell out (the VPC's CIDR, its default ACL): ask AWS
    const protectedCidrs = await Promise.all(settings.protectedTokens.map((token) => this.resolveToken(token)));
    const aclIds = settings.nacl ? await Promise.all(settings.nacl.aclIds.map((id) => (typeof id === 'string' ? Promise.resolve(id) : this.resolveToken(id)))) : [];
    const unresolved = [...protectedCidrs, ...aclIds].filter((value) => value === undefined).length;
    const guard = new NeverBlockGuard({ ...settings.guard, protectedCidrs: [...settings.guard.protectedCidrs, ...protectedCidrs.filter((c): c is string => c !== undefined && tryParseCidr(c, true) !== undefined)] });
    const resolvedAcls = [...new Set(aclIds.filter((id): id is string => typeof id === 'string'))];
    return {
      guard,
      source: `stack ${this.stackName} settings${unresolved > 0 ? ` (${unresolved} value${unresolved === 1 ? '' : 's'} of the template could not be resolved)` : ''}`,
      ...(settings.nacl && resolvedAcls.length > 0 ? { nacl: { aclIds: resolvedAcls, ruleRange: settings.nacl.ruleRange } } : {}),
      ...(settings.burstLimitPerMinute !== undefined ? { burstLimitPerMinute: settings.burstLimitPerMinute } : {}),
    };
  }

  /** The value of a template token in the deployed stack; undefined when it cannot be read. */
  private async resolveToken(token: TemplateToken): Promise<string | undefined> {
    try {
      const logicalId = 'Ref' in token ? token.Ref : token['Fn::GetAtt'][0];
      const answer = await this.clients.cloudFormation.send(new DescribeStackResourceCommand({ StackName: this.stackName, LogicalResourceId: logicalId }));
      const physical = answer.StackResourceDetail?.PhysicalResourceId;
      if (!physical) return undefined;
      if ('Ref' in token) return physical;
      const attribute = token['Fn::GetAtt'][1];
      if (attribute === 'DefaultNetworkAcl') {
        const acls = await this.clients.ec2.send(
          new DescribeNetworkAclsCommand({ Filters: [{ Name: 'vpc-id', Values: [physical] }, { Name: 'default', Values: ['true'] }] }),
        );
        return acls.NetworkAcls?.[0]?.NetworkAclId;
      }
      if (attribute === 'CidrBlock') {
        const vpcs = await this.clients.ec2.send(new DescribeVpcsCommand({ VpcIds: [physical] }));
        return vpcs.Vpcs?.[0]?.CidrBlock;
      }
      return undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Where each target is in force now, read from the enforcers themselves: portsnare's WAF IP
   * sets (the PortsnareIpSetArns output) and the deny entries in the reserved rule range of the
   * configured network ACLs. A source that cannot be read is reported as such, not as "nowhere".
   */
  private async placements(): Promise<{ byTarget: Map<string, string[]>; unknown: string[] }> {
    const byTarget = new Map<string, string[]>();
    const unknown: string[] = [];
    const add = (cidr: string | undefined, place: string): void => {
      const parsed = cidr ? tryParseCidr(cidr, false) : undefined;
      if (!parsed) return;
      const target = parsed.prefix === (parsed.family === 'ipv4' ? 32 : 128) ? parsed.network : parsed.text;
      byTarget.set(target, [...(byTarget.get(target) ?? []), place]);
    };
    const arns = (this.stack.Outputs?.find((o) => o.OutputKey === OUTPUT_IP_SETS)?.OutputValue ?? '')
      .split(',')
      .map((arn) => parseIpSetArn(arn.trim()))
      .filter((ref): ref is IpSetRef => ref !== undefined);
    await Promise.all(
      arns.map(async (ref) => {
        try {
          const answer = await this.clients.waf(ref.scope === 'CLOUDFRONT' ? 'us-east-1' : ref.region).send(new GetIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id }));
          for (const address of answer.IPSet?.Addresses ?? []) add(address, `waf:${ref.name}`);
        } catch (error) {
          unknown.push(`waf:${ref.name} (${awsError(error, 'read the IP set').message})`);
        }
      }),
    );
    const nacl = (await this.settings()).nacl;
    if (nacl && nacl.aclIds.length > 0) {
      try {
        const answer = await this.clients.ec2.send(new DescribeNetworkAclsCommand({ NetworkAclIds: [...nacl.aclIds] }));
        for (const acl of answer.NetworkAcls ?? []) {
          for (const entry of acl.Entries ?? []) {
            const rule = entry.RuleNumber ?? 0;
            if (entry.Egress || entry.RuleAction !== 'deny' || rule < nacl.ruleRange[0] || rule > nacl.ruleRange[1]) continue;
            add(entry.CidrBlock ?? entry.Ipv6CidrBlock, `nacl:${acl.NetworkAclId ?? '?'}#${rule}`);
          }
        }
      } catch (error) {
        unknown.push(`nacl (${awsError(error, 'read the network ACLs').message})`);
      }
    }
    return { byTarget, unknown };
  }

  private async withPlacements(views: BlockView[]): Promise<BlockView[]> {
    if (views.length === 0) return views;
    const { byTarget, unknown } = await this.placements();
    return views.map((view) => {
      if (!view.active) return view;
      const places = [...(byTarget.get(view.target) ?? []), ...unknown.map((what) => `unknown: ${what}`)];
      return { ...view, enforcedIn: places.length > 0 ? places : ['pending (not in WAF or the NACLs yet)'] };
    });
  }

  private async put(detailType: string, detail: Record<string, unknown>): Promise<string> {
    const answer = await this.send(`put ${detailType} on ${this.busName}`, () =>
      this.clients.events.send(
        new PutEventsCommand({
          Entries: [{ Source: EVENT_SOURCE_CLI, DetailType: detailType, Detail: JSON.stringify(detail), EventBusName: this.busName }],
        }),
      ),
    );
    const entry = answer.Entries?.[0];
    if ((answer.FailedEntryCount ?? 0) > 0 || !entry?.EventId) {
      throw new CliError(`EventBridge refused the ${detailType} event: ${entry?.ErrorCode ?? 'no event id'} ${entry?.ErrorMessage ?? ''}`.trim(), EXIT.failure);
    }
    return entry.EventId;
  }

  private async waitFor(target: string, done: (item: Item | undefined) => boolean): Promise<Item | null | undefined> {
    const deadline = Date.now() + this.waitSeconds * 1000;
    for (;;) {
      const item = await this.get(`BLOCK#${target}`, 'STATE');
      if (done(item)) return item ?? null;
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, Math.min(250, Math.max(20, deadline - Date.now()))));
    }
  }

  private async get(pk: string, sk: string): Promise<Item | undefined> {
    const answer = await this.send('read the table', () =>
      this.clients.dynamo.send(new GetCommand({ TableName: this.tableName, Key: { pk, sk }, ConsistentRead: true })),
    );
    return answer.Item as Item | undefined;
  }

  private async activeRecords(now: number): Promise<BlockView[]> {
    const items: Item[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.send('list active blocks', () =>
        this.clients.dynamo.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: ACTIVE_INDEX,
            KeyConditionExpression: 'activeKey = :active AND expiresAt > :now',
            ExpressionAttributeValues: { ':active': ACTIVE_KEY, ':now': now },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      items.push(...((page.Items ?? []) as Item[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    // An index that projects only keys: fetch each record.
    const full = await Promise.all(
      items.map(async (item) => (typeof item['offences'] === 'number' ? item : ((await this.get(String(item['pk']), 'STATE')) ?? item))),
    );
    return full.map(toView).filter((view) => view.active && view.expiresAt > now);
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw awsError(error, what);
    }
  }
}

async function regionOf(client: CloudFormationClient): Promise<string> {
  try {
    const region = await client.config.region();
    if (region) return region;
  } catch {
    // falls through to the message below
  }
  throw new CliError('no AWS Region: pass --region REGION or set AWS_REGION (or a region in the AWS_PROFILE profile)', EXIT.credentials);
}

function isNamed(error: unknown, name: string): boolean {
  return typeof error === 'object' && error !== null && ((error as { name?: unknown }).name === name || (error as { Code?: unknown }).Code === name);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const CREDENTIALS_HELP =
  'set AWS_PROFILE to a profile in ~/.aws/config (then `aws sso login` if it uses SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), or run where an instance or task role applies';

/** An AWS SDK error as a one-line operator message with the exit code it deserves. */
export function awsError(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error;
  const name = typeof error === 'object' && error !== null ? String((error as { name?: unknown }).name ?? '') : '';
  const message = messageOf(error);
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return new CliError(`no AWS credentials (${what}): ${CREDENTIALS_HELP}`, EXIT.credentials);
  }
  if (/region is missing/i.test(message)) {
    return new CliError('no AWS Region: pass --region REGION or set AWS_REGION', EXIT.credentials);
  }
  if (/^(ExpiredToken(Exception)?|UnrecognizedClientException|InvalidClientTokenId|InvalidSignatureException|TokenRefreshRequired)$/.test(name)) {
    return new CliError(`AWS rejected the credentials (${name}: ${message}) while trying to ${what}: ${CREDENTIALS_HELP}`, EXIT.credentials);
  }
  if (/AccessDenied/.test(name)) {
    return new CliError(`AWS denied ${what}: ${message}`, EXIT.failure);
  }
  if (name === 'ResourceNotFoundException') {
    return new CliError(`cannot ${what}: ${message} (was the stack's table deleted?)`, EXIT.notFound);
  }
  return new CliError(`cannot ${what}: ${name ? `${name}: ` : ''}${message}`, EXIT.failure);
}

function numberOr(value: unknown, fallback: number): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  return fallback;
}

function stringList(value: unknown): string[] {
  if (value instanceof Set) return [...value].map(String);
  if (Array.isArray(value)) return value.map((entry) => (typeof entry === 'string' ? entry : JSON.stringify(entry)));
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([kind, places]) => stringList(places).map((place) => `${kind}:${place}`));
  }
  return [];
}

/** A table item (BlockRecord fields plus keys) as a BlockView. */
export function toView(item: Item): BlockView {
  const target = typeof item['target'] === 'string' ? item['target'] : String(item['pk'] ?? '').replace(/^BLOCK#/, '');
  const family: Family = item['family'] === 'ipv6' || item['family'] === 'ipv4' ? item['family'] : (tryParseCidr(target, true)?.family ?? 'ipv4');
  const enforcedIn = stringList(item['enforcedIn'] ?? item['enforcement'] ?? item['placements']);
  return {
    target,
    family,
    reason: typeof item['reason'] === 'string' ? item['reason'] : 'unknown',
    offences: numberOr(item['offences'], 1),
    hitCount: numberOr(item['hitCount'], 0),
    firstSeen: numberOr(item['firstSeen'], 0),
    lastSeen: numberOr(item['lastSeen'], 0),
    blockedAt: numberOr(item['blockedAt'], 0),
    expiresAt: numberOr(item['expiresAt'], 0),
    active: item['active'] === true,
    enforcedIn,
    sensors: stringList(item['sensors']),
    ...(typeof item['note'] === 'string' ? { note: item['note'] } : {}),
    ...(typeof item['liftedBy'] === 'string' ? { liftedBy: item['liftedBy'] } : {}),
  };
}

/** `HIST#<iso time>#<action>` items as history lines. */
function historyEntry(item: Item): HistoryView {
  const sk = String(item['sk']);
  const rest = sk.slice('HIST#'.length);
  const split = rest.lastIndexOf('#');
  const isoPart = split > 0 ? rest.slice(0, split) : rest;
  const action = typeof item['action'] === 'string' ? item['action'] : split > 0 ? rest.slice(split + 1) : 'unknown';
  const at = numberOr(item['at'], Date.parse(isoPart) || 0);
  const record = (item['record'] && typeof item['record'] === 'object' ? item['record'] : item) as Item;
  const parts: string[] = [];
  if (typeof record['reason'] === 'string') parts.push(`reason ${record['reason']}`);
  if (typeof record['offences'] === 'number') parts.push(`offence ${record['offences']}`);
  if (typeof record['hitCount'] === 'number') parts.push(`${record['hitCount']} hits`);
  if (typeof record['expiresAt'] === 'number' && /^(block|refresh)$/.test(action)) parts.push(`until ${isoSeconds(record['expiresAt'])}`);
  for (const key of ['requestedBy', 'liftedBy', 'by', 'why', 'note']) {
    const value = item[key] ?? record[key];
    if (typeof value === 'string' && value) parts.push(`${key === 'why' || key === 'note' ? '' : `${key} `}${value}`.trim());
  }
  return { at, action, detail: parts.join(', ') };
}

/** A CloudFormation intrinsic left in PORTSNARE_SETTINGS: `{Ref: id}` or `{"Fn::GetAtt": [id, attribute]}`. */
export type TemplateToken = { readonly Ref: string } | { readonly 'Fn::GetAtt': readonly [string, string] };

const TOKEN = /^@@portsnare-token-(\d+)@@$/;

export interface TemplateSettings {
  /** the guard with the literal entries; token entries are in `protectedTokens` */
  readonly guard: GuardSettings;
  /** entries of guard.protectedCidrs that were tokens (the VPC's CIDR) */
  readonly protectedTokens: readonly TemplateToken[];
  readonly nacl?: { readonly aclIds: ReadonlyArray<string | TemplateToken>; readonly ruleRange: readonly [number, number] };
  /** policy.burstLimitPerMinute, when the template says */
  readonly burstLimitPerMinute?: number;
}

/**
 * The guard and the NACL settings in PORTSNARE_SETTINGS of any function in a CloudFormation
 * template (JSON). A value built with Fn::Join around tokens (the VPC's CIDR, ACL ids, IP set
 * ids) is put back together with a placeholder for each token — they sit inside JSON strings —
 * and the tokens of guard.protectedCidrs and nacl.aclIds are handed back for resolving.
 */
export function settingsFromTemplate(templateBody: string): TemplateSettings | undefined {
  let template: { Resources?: Record<string, { Type?: string; Properties?: { Environment?: { Variables?: Record<string, unknown> } } }> };
  try {
    template = JSON.parse(templateBody) as typeof template;
  } catch {
    return undefined;
  }
  for (const resource of Object.values(template.Resources ?? {})) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const tokens: unknown[] = [];
    const text = literalText(resource.Properties?.Environment?.Variables?.[SETTINGS_ENV], tokens);
    if (text === undefined) continue;
    const tokenOf = (entry: unknown): TemplateToken | undefined => {
      const match = typeof entry === 'string' ? TOKEN.exec(entry) : null;
      const token = match ? tokens[Number(match[1])] : undefined;
      return isToken(token) ? token : undefined;
    };
    try {
      const document = JSON.parse(text) as { guard?: Record<string, unknown>; nacl?: { aclIds?: unknown; ruleRange?: unknown }; policy?: { burstLimitPerMinute?: unknown } };
      const burst = document.policy?.burstLimitPerMinute;
      const protectedTokens: TemplateToken[] = [];
      const guardInput = Object.fromEntries(
        Object.entries(document.guard ?? {}).map(([key, value]) => {
          if (!Array.isArray(value)) return [key, value];
          const literal = value.filter((entry) => {
            const token = tokenOf(entry);
            if (token && key === 'protectedCidrs') protectedTokens.push(token);
            return !(typeof entry === 'string' && TOKEN.test(entry));
          });
          return [key, literal];
        }),
      );
      const guard = GuardSettingsSchema.parse(guardInput);
      const aclIds = (Array.isArray(document.nacl?.aclIds) ? document.nacl.aclIds : [])
        .map((id: unknown) => tokenOf(id) ?? id)
        .filter((id): id is string | TemplateToken => isToken(id) || (typeof id === 'string' && /^acl-[0-9a-f]+$/.test(id)));
      const range = document.nacl?.ruleRange;
      const ruleRange: [number, number] = Array.isArray(range) && typeof range[0] === 'number' && typeof range[1] === 'number' ? [range[0], range[1]] : [1, 99];
      return {
        guard,
        protectedTokens,
        ...(aclIds.length > 0 ? { nacl: { aclIds, ruleRange } } : {}),
        ...(typeof burst === 'number' ? { burstLimitPerMinute: burst } : {}),
      };
    } catch {
      continue;
    }
  }
  return undefined;
}

function isToken(value: unknown): value is TemplateToken {
  if (!value || typeof value !== 'object') return false;
  const ref = (value as { Ref?: unknown }).Ref;
  const getAtt = (value as { 'Fn::GetAtt'?: unknown })['Fn::GetAtt'];
  return typeof ref === 'string' || (Array.isArray(getAtt) && getAtt.length === 2 && getAtt.every((part) => typeof part === 'string'));
}

function literalText(value: unknown, tokens: unknown[]): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'Fn::Join' in value) {
    const [separator, parts] = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    if (!Array.isArray(parts)) return undefined;
    return parts
      .map((part) => {
        if (typeof part === 'string') return part;
        tokens.push(part);
        return `@@portsnare-token-${tokens.length - 1}@@`;
      })
      .join(typeof separator === 'string' ? separator : '');
  }
  return undefined;
}
