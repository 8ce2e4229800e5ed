/**
 * A stateful fake of one AWS account for the `--stack` commands: CloudFormation stacks with
 * outputs, a DynamoDB table with the `active` sparse index (document-client level), and
 * EventBridge buses. Only what the command line and the pipeline's repository call, with the
 * documented behaviour they depend on:
 *
 * - DescribeStacks on a stack that does not exist fails with ValidationError "Stack with id NAME
 *   does not exist" (CloudFormation API Reference, DescribeStacks; the Query API's error shape).
 * - PutItem and UpdateItem with a ConditionExpression: a false condition fails with
 *   ConditionalCheckFailedException and writes nothing (test/fakes/dynamodb.ts evaluates it);
 *   UpdateItem's `ADD #n :v` adds to a number (absent: 0) and `SET #n = :v` sets.
 * - Query returns at most one page (1 MB in AWS, `pageSize` items here) and a LastEvaluatedKey
 *   when more remain; items come sorted by the sort key, ascending unless ScanIndexForward is
 *   false; a global secondary index holds only items that carry its key attributes (sparse), and
 *   ConsistentRead on a GSI is a ValidationException (DynamoDB Developer Guide, "Using Global
 *   Secondary Indexes", "Query": "Strongly consistent reads are not supported on global secondary
 *   indexes").
 * - PutEvents takes 1 to 10 entries (ValidationException otherwise); an entry whose Detail is not a
 *   JSON object fails with ErrorCode MalformedDetail, one on a bus that does not exist with
 *   ResourceNotFoundException, and counts in FailedEntryCount (EventBridge API Reference,
 *   PutEvents, PutEventsResultEntry).
 *
 * - GetIPSet of a set that does not exist fails with WAFNonexistentItemException (AWS WAF API
 *   Reference, GetIPSet); DescribeNetworkAcls of an unknown id fails with
 *   InvalidNetworkAclID.NotFound (Amazon EC2 API Reference, error codes).
 *
 * `onEvent` stands in for the pipeline behind the bus (rules → decide → table), so `--wait` can be
 * tested end to end.
 */
import { CloudFormationClient, DescribeStacksCommand, type Stack } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeNetworkAclsCommand, EC2Client, type NetworkAclEntry } from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry, type PutEventsResultEntry } from '@aws-sdk/client-eventbridge';
import { GetIPSetCommand, WAFV2Client } from '@aws-sdk/client-wafv2';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { PipelineSettingsInput } from '../../core/settings';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { evaluateCondition } from '../fakes/dynamodb';

type Item = Record<string, unknown>;

export class AwsError extends Error {
  readonly $metadata = { httpStatusCode: 400 };
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FakeStack {
  readonly name: string;
  readonly status?: string;
  readonly outputs: Record<string, string>;
}

export interface SentEvent {
  readonly bus: string;
  readonly source: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
  readonly id: string;
}

export class FakeAccount {
  readonly stacks = new Map<string, FakeStack>();
  readonly tables = new Map<string, Map<string, Item>>();
  readonly buses = new Set<string>();
  readonly events: SentEvent[] = [];
  /** the pipeline behind the bus, when a test wants one */
  onEvent: ((event: SentEvent, account: FakeAccount) => void) | undefined;
  pageSize = 2;
  private nextId = 1;

  readonly cloudFormation = mockClient(CloudFormationClient);
  readonly dynamo = mockClient(DynamoDBDocumentClient);
  readonly eventBridge = mockClient(EventBridgeClient);
  readonly wafv2 = mockClient(WAFV2Client);
  readonly ec2 = mockClient(EC2Client);
  /** IP set name → addresses (CIDR notation, as WAF holds them) */
  readonly ipSets = new Map<string, string[]>();
  /** ACL id → entries */
  readonly acls = new Map<string, NetworkAclEntry[]>();
  /** calls to GetItem, in order (a test can act after the command line has looked) */
  onGet: ((table: string, key: { pk: string; sk: string }) => void) | undefined;

  constructor() {
    this.cloudFormation.on(DescribeStacksCommand).callsFake((input: { StackName?: string }) => {
      const stack = this.stacks.get(input.StackName ?? '');
      if (!stack) throw new AwsError('ValidationError', `Stack with id ${input.StackName} does not exist`);
      const described: Stack = {
        StackName: stack.name,
        StackId: `arn:aws:cloudformation:eu-west-1:111122223333:stack/${stack.name}/0000`,
        StackStatus: (stack.status ?? 'CREATE_COMPLETE') as Stack['StackStatus'],
        CreationTime: new Date('2026-11-01T00:00:00Z'),
        Outputs: Object.entries(stack.outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      };
      return { Stacks: [described] };
    });
    this.dynamo.on(GetCommand).callsFake((input: { TableName: string; Key: { pk: string; sk: string } }) => {
      const item = this.table(input.TableName).get(key(input.Key.pk, input.Key.sk));
      const answer = item ? { Item: structuredClone(item) } : {};
      this.onGet?.(input.TableName, input.Key);
      return answer;
    });
    this.dynamo.on(PutCommand).callsFake((input: PutCommandInput) => this.put(input));
    this.dynamo.on(UpdateCommand).callsFake((input: UpdateCommandInput) => this.update(input));
    this.dynamo.on(QueryCommand).callsFake((input: QueryCommandInput) => this.query(input));
    this.eventBridge.on(PutEventsCommand).callsFake((input: { Entries?: PutEventsRequestEntry[] }) => this.putEvents(input.Entries ?? []));
    this.wafv2.on(GetIPSetCommand).callsFake((input: { Name?: string; Id?: string; Scope?: string }) => {
      const addresses = this.ipSets.get(input.Name ?? '');
      if (!addresses) throw new AwsError('WAFNonexistentItemException', 'AWS WAF couldn’t perform the operation because your resource doesn’t exist.');
      return { IPSet: { Name: input.Name, Id: input.Id, ARN: 'arn', IPAddressVersion: 'IPV4', Addresses: [...addresses] }, LockToken: 'token-1' };
    });
    this.ec2.on(DescribeNetworkAclsCommand).callsFake((input: { NetworkAclIds?: string[] }) => {
      const ids = input.NetworkAclIds ?? [...this.acls.keys()];
      for (const id of ids) if (!this.acls.has(id)) throw new AwsError('InvalidNetworkAclID.NotFound', `The networkAcl ID '${id}' does not exist`);
      return { NetworkAcls: ids.map((id) => ({ NetworkAclId: id, Entries: structuredClone(this.acls.get(id) ?? []) })) };
    });
  }

  restore(): void {
    this.cloudFormation.restore();
    this.dynamo.restore();
    this.eventBridge.restore();
    this.wafv2.restore();
    this.ec2.restore();
  }

  /**
   * A deployed portsnare stack with its table and bus; `settings` is what its PortsnareSettings
   * output holds (null: a stack of an older portsnare, without the output).
   */
  addPortsnareStack(name: string, options: { settings?: PipelineSettingsInput | null; status?: string } = {}): { table: string; bus: string } {
    const table = `${name}-Table-ABC123`;
    const bus = `${name}-bus`;
    this.tables.set(table, new Map());
    this.buses.add(bus);
    this.ipSets.set(`${name}-v4`, []);
    this.stacks.set(name, {
      name,
      ...(options.status ? { status: options.status } : {}),
      // the output keys spelled out: a renamed key in core/outputs.ts must fail these tests
      outputs: {
        PortsnareTableName: table,
        PortsnareEventBusName: bus,
        PortsnareEventBusArn: `arn:aws:events:eu-west-1:111122223333:event-bus/${bus}`,
        PortsnareIpSetArns: `arn:aws:wafv2:eu-west-1:111122223333:regional/ipset/${name}-v4/11111111-1111-4111-8111-111111111111`,
        PortsnareRuleGroupArn: 'arn:aws:wafv2:eu-west-1:111122223333:regional/rulegroup/portsnare/2222',
        ...(options.settings === null ? {} : { PortsnareSettings: JSON.stringify(options.settings ?? {}) }),
      },
    });
    return { table, bus };
  }

  table(name: string): Map<string, Item> {
    const table = this.tables.get(name);
    if (!table) throw new AwsError('ResourceNotFoundException', 'Requested resource not found');
    return table;
  }

  /** The pipeline's own repository over a table of this account: tests seed state through it. */
  repository(tableName: string): BlockRepository {
    return new BlockRepository(this.documentClient(), tableName);
  }

  /** The enforce function's placement ledger over a table of this account (which NACL entries are the stack's). */
  ledger(tableName: string): PlacementLedger {
    return new PlacementLedger(this.documentClient(), tableName);
  }

  private documentClient(): DynamoDBDocumentClient {
    return DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }), {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  private put(input: PutCommandInput): Record<string, never> {
    const item = input.Item as Item;
    const table = this.table(input.TableName ?? '');
    const id = key(String(item['pk']), String(item['sk']));
    this.check(input.ConditionExpression, table.get(id), input.ExpressionAttributeNames, input.ExpressionAttributeValues);
    table.set(id, structuredClone(item));
    return {};
  }

  private update(input: UpdateCommandInput): { Attributes: Item } {
    const table = this.table(input.TableName ?? '');
    const { pk, sk } = input.Key as { pk: string; sk: string };
    const id = key(pk, sk);
    const existing = table.get(id);
    this.check(input.ConditionExpression, existing, input.ExpressionAttributeNames, input.ExpressionAttributeValues);
    const item: Item = structuredClone(existing ?? { pk, sk });
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    for (const clause of (input.UpdateExpression ?? '').split(/\s+(?=SET\s|ADD\s)/)) {
      const [keyword, ...rest] = clause.trim().split(/\s+/);
      for (const action of rest.join(' ').split(',')) {
        const match = keyword === 'ADD' ? /^\s*(#?\w+)\s+(:\w+)\s*$/.exec(action) : /^\s*(#?\w+)\s*=\s*(:\w+)\s*$/.exec(action);
        if (!match || (keyword !== 'ADD' && keyword !== 'SET')) throw new AwsError('ValidationException', `Invalid UpdateExpression: ${clause}`);
        const name = names[match[1] ?? ''] ?? match[1] ?? '';
        const value = values[match[2] ?? ''];
        item[name] = keyword === 'ADD' ? Number(item[name] ?? 0) + Number(value) : value;
      }
    }
    table.set(id, item);
    return { Attributes: structuredClone(item) };
  }

  private check(expression: string | undefined, existing: Item | undefined, names: Record<string, string> | undefined, values: Record<string, unknown> | undefined): void {
    if (expression && !evaluateCondition(expression, existing, names, values)) throw new AwsError('ConditionalCheckFailedException', 'The conditional request failed');
  }

  private query(input: QueryCommandInput): { Items: Item[]; Count: number; LastEvaluatedKey?: Item } {
    if (input.IndexName && input.ConsistentRead) throw new AwsError('ValidationException', 'Consistent reads are not supported on global secondary indexes');
    // the table's indexes (lib/DesiredStateTable.ts): `active`, and the change log `changes` (core/table.ts)
    const indexes: Record<string, [string, string]> = { active: ['activeKey', 'expiresAt'], changes: ['chgKey', 'chgAt'] };
    if (input.IndexName && !indexes[input.IndexName]) throw new AwsError('ValidationException', `The table does not have the specified index: ${input.IndexName}`);
    const [hashName, rangeName] = input.IndexName ? indexes[input.IndexName]! : ['pk', 'sk'];
    const conditions = parseKeyCondition(input.KeyConditionExpression ?? '', input.ExpressionAttributeValues ?? {}, input.ExpressionAttributeNames ?? {});
    if (!conditions.some((c) => c.name === hashName && c.op === '=')) {
      throw new AwsError('ValidationException', `Query condition missed key schema element: ${hashName}`);
    }
    const matches = [...this.table(input.TableName ?? '').values()]
      .filter((item) => item[hashName] !== undefined && item[rangeName] !== undefined)
      .filter((item) => conditions.every((c) => test(item[c.name], c.op, c.value)))
      .sort((a, b) => compare(a[rangeName], b[rangeName]) || compare(a['pk'], b['pk']))
      .map((item) => structuredClone(item));
    if (input.ScanIndexForward === false) matches.reverse();
    const start = input.ExclusiveStartKey
      ? matches.findIndex((item) => item['pk'] === input.ExclusiveStartKey?.['pk'] && item['sk'] === input.ExclusiveStartKey?.['sk']) + 1
      : 0;
    const page = matches.slice(start, start + this.pageSize);
    const more = start + this.pageSize < matches.length;
    const last = page[page.length - 1];
    return {
      Items: page,
      Count: page.length,
      ...(more && last ? { LastEvaluatedKey: { pk: last['pk'], sk: last['sk'], ...(input.IndexName ? { [hashName]: last[hashName], [rangeName]: last[rangeName] } : {}) } } : {}),
    };
  }

  private putEvents(entries: PutEventsRequestEntry[]): { FailedEntryCount: number; Entries: PutEventsResultEntry[] } {
    if (entries.length < 1 || entries.length > 10) throw new AwsError('ValidationException', '1 validation error detected: Value at \'entries\' failed to satisfy constraint: Member must have length less than or equal to 10');
    const results: PutEventsResultEntry[] = [];
    const accepted: SentEvent[] = [];
    for (const entry of entries) {
      const bus = entry.EventBusName ?? 'default';
      if (!this.buses.has(bus)) {
        results.push({ ErrorCode: 'ResourceNotFoundException', ErrorMessage: `Event bus ${bus} does not exist.` });
        continue;
      }
      let detail: unknown;
      try {
        detail = JSON.parse(entry.Detail ?? '');
      } catch {
        detail = undefined;
      }
      if (!detail || typeof detail !== 'object' || Array.isArray(detail)) {
        results.push({ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' });
        continue;
      }
      const id = `00000000-0000-0000-0000-${String(this.nextId++).padStart(12, '0')}`;
      const event: SentEvent = { bus, source: entry.Source ?? '', detailType: entry.DetailType ?? '', detail: detail as Record<string, unknown>, id };
      this.events.push(event);
      accepted.push(event);
      results.push({ EventId: id });
    }
    for (const event of accepted) this.onEvent?.(event, this);
    return { FailedEntryCount: results.filter((r) => r.ErrorCode).length, Entries: results };
  }
}

function key(pk: string, sk: string): string {
  return `${pk}\u0000${sk}`;
}

interface Condition {
  readonly name: string;
  readonly op: '=' | '<' | '<=' | '>' | '>=' | 'begins_with';
  readonly value: unknown;
}

function parseKeyCondition(expression: string, values: Record<string, unknown>, names: Record<string, string>): Condition[] {
  return expression.split(/\s+AND\s+/i).map((part) => {
    const resolveName = (n: string): string => names[n] ?? n;
    const resolveValue = (v: string): unknown => {
      if (!(v in values)) throw new AwsError('ValidationException', `Value provided in ExpressionAttributeValues unused in expressions or missing: ${v}`);
      return values[v];
    };
    const begins = /^\s*begins_with\(\s*([#\w]+)\s*,\s*(:\w+)\s*\)\s*$/.exec(part);
    if (begins) return { name: resolveName(begins[1] ?? ''), op: 'begins_with', value: resolveValue(begins[2] ?? '') };
    const compareMatch = /^\s*([#\w]+)\s*(=|<=|>=|<|>)\s*(:\w+)\s*$/.exec(part);
    if (!compareMatch) throw new AwsError('ValidationException', `Invalid KeyConditionExpression: ${part}`);
    return { name: resolveName(compareMatch[1] ?? ''), op: compareMatch[2] as Condition['op'], value: resolveValue(compareMatch[3] ?? '') };
  });
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  // DynamoDB orders strings by their UTF-8 bytes; for the ASCII keys here that is code-unit order
  const [x, y] = [String(a), String(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

function test(actual: unknown, op: Condition['op'], expected: unknown): boolean {
  if (actual === undefined) return false;
  switch (op) {
    case '=':
      return actual === expected;
    case '<':
      return compare(actual, expected) < 0;
    case '<=':
      return compare(actual, expected) <= 0;
    case '>':
      return compare(actual, expected) > 0;
    case '>=':
      return compare(actual, expected) >= 0;
    case 'begins_with':
      return typeof actual === 'string' && actual.startsWith(String(expected));
  }
}
