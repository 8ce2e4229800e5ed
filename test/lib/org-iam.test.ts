/**
 * The organization's trust boundaries, evaluated on the synthesized templates (issue 18): an IAM
 * evaluator written here from the AWS documentation, which imports nothing of lib/ or core/,
 * asks who may do what with the statements CloudFormation would deploy.
 *
 * The rules it follows, each from its page:
 * - a request is implicitly denied; an explicit Deny in any applicable policy wins over any Allow
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html);
 * - across accounts, the principal's identity-based policy AND the resource's resource-based
 *   policy must both allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
 * - within a Condition block, every operator and every key must match (AND), any of a key's values
 *   may (OR); a missing key fails a positive operator; `ForAllValues:` matches when every request
 *   value matches, and also when the key is absent from the request; `ForAnyValue:` needs one
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-logic-multiple-context-keys-or-values.html,
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html,
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html);
 * - ArnLike/ArnEquals compare each of the six colon-delimited ARN components apart, `*` and `?`
 *   wildcards within a component; StringLike takes `*` and `?` over the whole value
 *   (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html);
 * - an AWS principal `arn:aws:iam::<account>:root` (or the bare account id) means the account, so
 *   any principal of it that its own policies allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
 *
 * DynamoDB context: `dynamodb:LeadingKeys` is the partition key values an item request names,
 * `dynamodb:Attributes` the attribute names it touches
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html).
 * The actions that create or change an item are PutItem, UpdateItem, BatchWriteItem, PartiQLInsert
 * and PartiQLUpdate (Service Authorization Reference, Amazon DynamoDB:
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html).
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePortsnareContext } from '../../lib/appConfig';
import { addOrganizationStacks } from '../../lib/org';
import { flatten, projectApp, resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

type Json = Record<string, unknown>;
type Values = string | string[];
interface Statement {
  Effect: 'Allow' | 'Deny';
  Principal?: '*' | { AWS?: unknown; Service?: unknown };
  Action: Values;
  Resource: unknown;
  Condition?: Record<string, Record<string, Values>>;
}
interface Request {
  readonly principalArn: string;
  readonly action: string;
  readonly resource: string;
  /** request context: a single value, or a list for a multivalued key */
  readonly context: Readonly<Record<string, string | readonly string[]>>;
}

// ---------------------------------------------------------------- the evaluator (from the docs above)

const list = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const wildcard = (pattern: string, value: string, caseless = false): boolean =>
  new RegExp(`^${pattern.split('').map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`, caseless ? 'i' : '').test(value);
/** ARN components: arn, partition, service, region, account, and the resource (which may hold colons) */
const arnParts = (arn: string): string[] => {
  const parts = arn.split(':');
  return [...parts.slice(0, 5), parts.slice(5).join(':')];
};
const arnLike = (pattern: string, value: string): boolean => {
  const p = arnParts(pattern);
  const v = arnParts(value);
  return p.length === 6 && v.length === 6 && p.every((part, i) => wildcard(part, v[i]!));
};

function operatorMatches(operator: string, wanted: string[], actual: string): boolean {
  switch (operator) {
    case 'StringEquals':
      return wanted.includes(actual);
    case 'StringLike':
      return wanted.some((w) => wildcard(w, actual));
    // the page lists ArnEquals and ArnLike as one: per component, wildcards allowed
    case 'ArnEquals':
    case 'ArnLike':
      return wanted.some((w) => arnLike(w, actual));
    default:
      throw new Error(`condition operator ${operator} is not evaluated by this test`);
  }
}

function conditionHolds(condition: Statement['Condition'], context: Request['context']): boolean {
  return Object.entries(condition ?? {}).every(([fullOperator, keys]) =>
    Object.entries(keys).every(([key, wantedValues]) => {
      const wanted = list(wantedValues);
      const actual = context[key];
      const [set, operator] = fullOperator.includes(':') ? fullOperator.split(':') as [string, string] : [undefined, fullOperator];
      const negated = operator.startsWith('StringNot') || operator.startsWith('ArnNot');
      const positive = negated ? operator.replace('Not', '') : operator;
      const one = (value: string): boolean => operatorMatches(positive, wanted, value) !== negated;
      if (set === 'ForAllValues') return actual === undefined || list(actual as string[]).every(one);
      if (set === 'ForAnyValue') return actual !== undefined && list(actual as string[]).some(one);
      if (actual === undefined) return negated;
      if (typeof actual !== 'string') throw new Error(`${key} is multivalued: a set operator is needed`);
      return one(actual);
    }),
  );
}

/** Whether `statement` applies to `request` (principal only for resource-based statements). */
function applies(statement: Statement, request: Request, resourceBased: boolean): boolean {
  if (resourceBased) {
    const account = arnParts(request.principalArn)[4]!;
    const principals = statement.Principal === '*' ? ['*'] : list(statement.Principal?.AWS as Values | undefined).map(flatten);
    const named = principals.some((p) => p === '*' || p === account || p === `arn:aws:iam::${account}:root` || p === request.principalArn);
    if (!named) return false;
  }
  return (
    list(statement.Action).some((a) => wildcard(a, request.action, true)) &&
    list(statement.Resource as Values).map(flatten).some((r) => wildcard(r, request.resource)) &&
    conditionHolds(statement.Condition, request.context)
  );
}

type Verdict = 'allow' | 'deny' | 'implicit';
function evaluate(statements: readonly Statement[], request: Request, resourceBased: boolean): Verdict {
  const hits = statements.filter((s) => applies(s, request, resourceBased));
  if (hits.some((s) => s.Effect === 'Deny')) return 'deny';
  return hits.some((s) => s.Effect === 'Allow') ? 'allow' : 'implicit';
}

/** A cross-account request: both sides must allow, neither may deny. */
function crossAccountAllowed(identity: readonly Statement[], resource: readonly Statement[], request: Request): boolean {
  return evaluate(identity, request, false) === 'allow' && evaluate(resource, request, true) === 'allow';
}

/** What an administrator of a member account can give a role it creates. */
const ANYTHING: Statement[] = [{ Effect: 'Allow', Action: '*', Resource: '*' }];

// ------------------------------------------------------------------------ the organization under test

const ORG = 'o-a1b2c3d4e5';
const SECURITY = '111111111111';
const DECISION_REGION = 'eu-west-1';
const SENSOR_ROLES = 'arn:aws:iam::*:role/portsnare-sensor-*';
const ITEM_WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem', 'dynamodb:PartiQLInsert', 'dynamodb:PartiQLUpdate'];
/** every attribute a block record and its index entry are made of */
const BLOCK_ATTRIBUTES = ['pk', 'sk', 'activeKey', 'expiresAt', 'target', 'family', 'reason', 'active', 'version'];

interface Org {
  readonly decision: Template;
  readonly planes: Map<string, Template>;
}

function synthOrg(planes: Array<{ account: string; region: string }>, more: Record<string, unknown> = {}): Org {
  const parsed = parsePortsnareContext({
    ...more,
    vpcCidrs: ['10.0.0.0/8'],
    organization: { organizationId: ORG, decision: { account: SECURITY, region: DECISION_REGION }, sensorPrincipals: [SENSOR_ROLES], planes },
  });
  if (!parsed.ok) throw new Error(parsed.error);
  const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
  const stacks = addOrganizationStacks(app, parsed.value);
  return { decision: Template.fromStack(stacks.decision), planes: new Map(stacks.planes.map((s) => [`${s.account}/${s.region}`, Template.fromStack(s)])) };
}

/** Each table of the decision template: its ARN and its resource-based policy. */
function tablesOf(decision: Template): Map<string, Statement[]> {
  return new Map(
    resourcesOf(decision, 'AWS::DynamoDB::Table').map(([, t]) => {
      const props = t.Properties as { TableName: string; ResourcePolicy?: { PolicyDocument: { Statement: Statement[] } } };
      return [`arn:aws:dynamodb:${DECISION_REGION}:${SECURITY}:table/${props.TableName}`, props.ResourcePolicy?.PolicyDocument.Statement ?? []];
    }),
  );
}

/** The plane's enforce function: its role's name, its identity statements, and the table it reads the desired state from (TABLE_NAME). */
function enforceOf(plane: Template): { roleName: string; statements: Statement[]; desiredStateTable: string } {
  const [[roleId, role]] = resourcesOf(plane, 'AWS::IAM::Role').filter(([id]) => id.startsWith('PlaneEnforceRole')) as [[string, Json]];
  const statements = resourcesOf(plane, 'AWS::IAM::Policy')
    .filter(([, p]) => ((p.Properties as { Roles: Array<{ Ref: string }> }).Roles).some((r) => r.Ref === roleId))
    .flatMap(([, p]) => (p.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement);
  const [[, fn]] = resourcesOf(plane, 'AWS::Lambda::Function').filter(([, f]) => flatten((f.Properties as Json).Role).includes(roleId)) as [[string, Json]];
  const env = ((fn.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables);
  return { roleName: (role.Properties as Json).RoleName as string, statements, desiredStateTable: flatten(env.TABLE_NAME) };
}

function itemRequest(principalArn: string, action: string, table: string, pk: string): Request {
  return {
    principalArn,
    action,
    resource: table,
    context: { 'aws:PrincipalArn': principalArn, 'aws:PrincipalOrgID': ORG, 'aws:PrincipalAccount': arnParts(principalArn)[4]!, 'dynamodb:LeadingKeys': [pk], 'dynamodb:Attributes': BLOCK_ATTRIBUTES },
  };
}

const FORGED_KEYS = (own: string): string[] => ['BLOCK#32.0.0.0/3', own, 'PLANE#999999999999/eu-west-1', 'BURST'];

describe.each([
  ['per plane (each role by its ARN)', 3],
  ['large organization (roles matched by name in the plane accounts)', 12],
])('an organization, %s', (form, accounts) => {
  const regions = ['eu-west-1', 'us-east-1', 'ap-southeast-2', 'eu-central-1'];
  const planes = Array.from({ length: accounts }, (_, a) => String(200000000000 + a)).flatMap((account) => regions.map((region) => ({ account, region })));
  let org: Org;
  beforeAll(() => {
    org = synthOrg(planes);
  }, 300_000);

  it('is synthesized in the form named', () => {
    const patterns = [...tablesOf(org.decision).values()].flat().map((s) => s.Condition?.ArnLike?.['aws:PrincipalArn']);
    expect(patterns.some((p) => p !== undefined)).toBe(form.startsWith('large'));
  });

  it('no plane\'s enforce role, with the statements deployed, can create or change an item of the table enforce reads the desired state from', () => {
    const tables = tablesOf(org.decision);
    let checked = 0;
    for (const [id, template] of [...org.planes].slice(0, 8)) {
      const [account, region] = id.split('/') as [string, string];
      const enforce = enforceOf(template);
      const role = `arn:aws:iam::${account}:role/${enforce.roleName}`;
      const desiredPolicy = tables.get(enforce.desiredStateTable);
      expect(desiredPolicy, `the desired-state table ${enforce.desiredStateTable} is in the decision stack`).toBeDefined();
      for (const action of ITEM_WRITES) {
        for (const pk of FORGED_KEYS(`PLANE#${account}/${region}`)) {
          expect(crossAccountAllowed(enforce.statements, desiredPolicy!, itemRequest(role, action, enforce.desiredStateTable, pk)), `${role} ${action} ${pk}`).toBe(false);
          // nor with any identity policy its account could give it: the table's own policy refuses
          expect(crossAccountAllowed(ANYTHING, desiredPolicy!, itemRequest(role, action, enforce.desiredStateTable, pk)), `${role} (Allow *) ${action} ${pk}`).toBe(false);
          checked++;
        }
      }
      // the positive controls: it can read the active index, and write its own report elsewhere
      const query: Request = { ...itemRequest(role, 'dynamodb:Query', `${enforce.desiredStateTable}/index/active`, 'ACTIVE'), context: { 'aws:PrincipalArn': role, 'aws:PrincipalOrgID': ORG } };
      expect(crossAccountAllowed(enforce.statements, desiredPolicy!, query)).toBe(true);
      // the change log (issue 20): Query on the `changes` index too, and nothing else new
      const onTable = (action: string, resource: string): Request => ({ ...itemRequest(role, action, resource, 'A'), context: { 'aws:PrincipalArn': role, 'aws:PrincipalOrgID': ORG } });
      expect(crossAccountAllowed(enforce.statements, desiredPolicy!, onTable('dynamodb:Query', `${enforce.desiredStateTable}/index/changes`))).toBe(true);
      for (const [action, resource] of [
        ['dynamodb:Scan', `${enforce.desiredStateTable}/index/changes`],
        ['dynamodb:GetItem', enforce.desiredStateTable],
        ['dynamodb:Query', enforce.desiredStateTable],
        ['dynamodb:Scan', enforce.desiredStateTable],
        ['dynamodb:Query', `${enforce.desiredStateTable}/index/other`],
        ['dynamodb:DescribeTable', enforce.desiredStateTable],
        ['dynamodb:UpdateItem', enforce.desiredStateTable],
      ] as const) {
        expect(crossAccountAllowed(enforce.statements, desiredPolicy!, onTable(action, resource)), `${role} ${action} ${resource}`).toBe(false);
      }
      const [reportsTable, reportsPolicy] = [...tables].find(([arn]) => arn !== enforce.desiredStateTable)!;
      expect(crossAccountAllowed(enforce.statements, reportsPolicy, itemRequest(role, 'dynamodb:UpdateItem', reportsTable, `PLANE#${account}/${region}`))).toBe(true);
      // but not a block key there, nor another plane's report
      expect(crossAccountAllowed(enforce.statements, reportsPolicy, itemRequest(role, 'dynamodb:UpdateItem', reportsTable, 'BLOCK#32.0.0.0/3'))).toBe(false);
      const other = planes.find((p) => p.account !== account)!;
      expect(crossAccountAllowed(enforce.statements, reportsPolicy, itemRequest(role, 'dynamodb:UpdateItem', reportsTable, `PLANE#${other.account}/${other.region}`))).toBe(false);
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('a role of a member account named like an enforce role, whatever its own policy, writes nothing into the desired-state table', () => {
    const tables = tablesOf(org.decision);
    const enforce = enforceOf([...org.planes.values()][0]!);
    for (const name of ['Portsnare-enforce-eu-west-1', 'Portsnare-enforce-anything']) {
      const role = `arn:aws:iam::${planes[planes.length - 1]!.account}:role/${name}`;
      for (const action of ITEM_WRITES) {
        expect(crossAccountAllowed(ANYTHING, tables.get(enforce.desiredStateTable)!, itemRequest(role, action, enforce.desiredStateTable, 'BLOCK#32.0.0.0/3'))).toBe(false);
      }
    }
  });
});

describe('portsnare.enforcement.reconcileMinutes in an organization', () => {
  it('sets every plane\'s reconcile schedule', () => {
    const org = synthOrg([{ account: '222222222222', region: 'eu-west-1' }, { account: '333333333333', region: 'us-east-1' }], { enforcement: { reconcileMinutes: 4 } });
    for (const plane of org.planes.values()) {
      const rates = resourcesOf(plane, 'AWS::Scheduler::Schedule').map(([, s]) => (s.Properties as { ScheduleExpression: unknown }).ScheduleExpression);
      expect(rates).toEqual(['rate(4 minutes)']);
    }
  }, 300_000);
});

describe('the decision bus admits sensors by role', () => {
  let busPolicy: Statement[];
  let busArn: string;
  beforeAll(() => {
    const org = synthOrg([{ account: '222222222222', region: 'eu-west-1' }]);
    busPolicy = resourcesOf(org.decision, 'AWS::Events::EventBusPolicy').map(([, r]) => (r.Properties as { Statement: Statement }).Statement);
    busArn = flatten(busPolicy[0]!.Resource);
  }, 300_000);

  const putEvents = (principalArn: string, source: string, detailType: string, orgId = ORG): Request => ({
    principalArn,
    action: 'events:PutEvents',
    resource: busArn,
    context: { 'aws:PrincipalArn': principalArn, 'aws:PrincipalOrgID': orgId, 'events:source': source, 'events:detail-type': detailType },
  });

  it.each([
    ['a sensor role of a member account', 'arn:aws:iam::222222222222:role/portsnare-sensor-eu', 'portsnare.sensor', 'Scan Detected', ORG, true],
    ['its heartbeat', 'arn:aws:iam::222222222222:role/portsnare-sensor-eu', 'portsnare.sensor', 'Sensor Heartbeat', ORG, true],
    ['any other role of a member account, even with events:* of its own', 'arn:aws:iam::222222222222:role/Admin', 'portsnare.sensor', 'Scan Detected', ORG, false],
    ['a sensor role putting an operator request', 'arn:aws:iam::222222222222:role/portsnare-sensor-eu', 'portsnare.cli', 'Block Requested', ORG, false],
    ['a sensor-named role outside the organization', 'arn:aws:iam::999999999999:role/portsnare-sensor-eu', 'portsnare.sensor', 'Scan Detected', 'o-zzzzzzzzzz', false],
  ])('%s: %s', (_what, principal, source, detailType, orgId, allowed) => {
    expect(crossAccountAllowed(ANYTHING, busPolicy, putEvents(principal, source, detailType, orgId))).toBe(allowed);
  });
});
