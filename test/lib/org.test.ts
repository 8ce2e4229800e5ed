/**
 * The organization topology (lib/org/, docs/organization.md) synthesized for 3 accounts × 2
 * Regions: the cross-account wiring and IAM, read from the templates. Expected values are
 * literals (sources, detail types, table keys, ARNs), not imports of the code under test; the
 * InputTransformer is evaluated here by the documented EventBridge rule (an unquoted placeholder
 * takes the JSON value: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html).
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePortsnareContext } from '../../lib/appConfig';
import { Stack } from 'aws-cdk-lib';
import { addOrganizationStacks, DecisionPlane, orgNames } from '../../lib/org';
import { flatten, nagFindings, projectApp, resourcesOf } from './helpers';
import { WAKE_WINDOW_MS } from '../../lambda/shared/queue';

process.env.CDK_VALIDATION = 'false';

type Json = Record<string, unknown>;
interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: { AWS?: unknown; Service?: unknown };
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

const ORG = 'o-a1b2c3d4e5';
const SECURITY = '111111111111';
const ACCOUNTS = ['111111111111', '222222222222', '333333333333'];
const REGIONS = ['eu-west-1', 'us-east-1'];
const OPERATOR = 'arn:aws:iam::111111111111:role/SecOps*';
const SENSORS = 'arn:aws:iam::*:role/portsnare-sensor-*';
const ACL = (account: string, region: string): string => `acl-0${account.slice(0, 8)}${region === 'us-east-1' ? 'aaaa' : 'bbbb'}`;

function organizationContext(extra: Json = {}): Json {
  return {
    operatorPrincipals: [OPERATOR],
    vpcCidrs: ['10.0.0.0/8'],
    organization: {
      organizationId: ORG,
      decision: { account: SECURITY, region: 'eu-west-1' },
      sensorPrincipals: [SENSORS],
      planes: ACCOUNTS.flatMap((account) =>
        REGIONS.map((region) => ({
          account,
          region,
          ...(account === '333333333333' ? { wafScopes: [] } : {}),
          ...(account !== SECURITY ? { naclIds: [ACL(account, region)] } : {}),
          ...(account === SECURITY && region === 'us-east-1' ? { cloudfront: true } : {}),
        })),
      ),
      firewallManager: { adminAccount: SECURITY, organizationalUnits: ['ou-ab12-cdef3456'] },
      ...extra,
    },
  };
}

function synth(context: Json): { app: App; decision: Template; planes: Map<string, Template> } {
  const parsed = parsePortsnareContext(context);
  if (!parsed.ok) throw new Error(parsed.error);
  const app = new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } });
  const stacks = addOrganizationStacks(app, parsed.value);
  const planes = new Map(stacks.planes.map((s) => [`${s.account}/${s.region}`, Template.fromStack(s)]));
  return { app, decision: Template.fromStack(stacks.decision), planes };
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

function busStatements(template: Template): Statement[] {
  return resourcesOf(template, 'AWS::Events::EventBusPolicy').map(([, r]) => (r.Properties as { Statement: Statement }).Statement);
}

function roleStatements(template: Template, rolePrefix: string): Statement[] {
  const statements: Statement[] = [];
  for (const [, policy] of resourcesOf(template, 'AWS::IAM::Policy')) {
    const props = policy.Properties as { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Statement[] } };
    if (props.Roles.some((r) => r.Ref.startsWith(rolePrefix))) statements.push(...props.PolicyDocument.Statement);
  }
  expect(statements.length, `policies of ${rolePrefix}`).toBeGreaterThan(0);
  return statements;
}

/** EventBridge's input transformer: paths from the event, an unquoted placeholder takes the JSON value. */
function transform(transformer: { InputPathsMap: Record<string, string>; InputTemplate: string }, event: Json): string {
  const at = (path: string): unknown => path.slice(2).split('.').reduce<unknown>((v, k) => (v as Json | undefined)?.[k], event);
  return transformer.InputTemplate.replace(/<([^>]+)>/g, (_, name: string) => JSON.stringify(at(transformer.InputPathsMap[name]!)));
}

describe('an organization of 3 accounts × 2 Regions', () => {
  let synthesized: ReturnType<typeof synth>;
  beforeAll(() => {
    synthesized = synth(organizationContext());
  }, 180_000);

  it('synthesizes one decision stack and one stack per plane, each free of unacknowledged cdk-nag findings', () => {
    expect([...synthesized.planes.keys()].sort()).toEqual(ACCOUNTS.flatMap((a) => REGIONS.map((r) => `${a}/${r}`)).sort());
    expect(nagFindings(synthesized.app)).toEqual([]);
    const planesOutput = (synthesized.decision.toJSON().Outputs as Record<string, { Value: string }>).PortsnarePlanes;
    expect(JSON.parse(planesOutput!.Value)).toEqual(ACCOUNTS.flatMap((a) => REGIONS.map((r) => `${a}/${r}`)));
    // status --org counts a plane silent after two reconcile periods: the default 10 minutes here
    expect((synthesized.decision.toJSON().Outputs as Record<string, { Value: string }>).PortsnareReconcileMinutes?.Value).toBe('10');
  });

  it('the decision bus accepts only sensor events from the sensor roles of the organization, and operator requests only from the operators', () => {
    const statements = busStatements(synthesized.decision);
    const allows = statements.filter((s) => s.Effect === 'Allow');
    expect(allows).toHaveLength(1);
    for (const s of allows) {
      expect(s.Principal).toEqual({ AWS: '*' });
      expect(list(s.Action)).toEqual(['events:PutEvents']);
      expect(s.Condition).toEqual({
        StringEquals: { 'aws:PrincipalOrgID': ORG, 'events:source': 'portsnare.sensor', 'events:detail-type': ['Scan Detected', 'Sensor Heartbeat'] },
        ArnLike: { 'aws:PrincipalArn': [SENSORS] },
      });
    }
    const denies = statements.filter((s) => s.Effect === 'Deny');
    expect(denies).toEqual([
      expect.objectContaining({
        Principal: { AWS: '*' },
        Condition: { StringEquals: { 'events:source': 'portsnare.cli' }, ArnNotLike: { 'aws:PrincipalArn': [OPERATOR] } },
      }),
    ]);
  });

  it('every wake-up goes through the pipe to the decision bus as Desired State Changed from portsnare.decision', () => {
    const [[, pipe]] = resourcesOf(synthesized.decision, 'AWS::Pipes::Pipe') as [[string, Json]];
    const props = pipe.Properties as Json;
    expect(flatten(props.Source)).toMatch(/^«DecisionWakeUpQueue[0-9A-F]+\.Arn»$/);
    expect(flatten(props.Target)).toMatch(/^«DecisionBus[0-9A-F]+\.Arn»$/);
    // the wake-up wrapped in an object (eb-pipes-input-transformation.html), never `<$.body>` alone
    expect(props.TargetParameters).toEqual({ InputTemplate: '{"wakeUp": <$.body>}', EventBridgeEventBusParameters: { Source: 'portsnare.decision', DetailType: 'Desired State Changed' } });
    const queues = resourcesOf(synthesized.decision, 'AWS::SQS::Queue').filter(([id]) => id.startsWith('DecisionWakeUpQueue'));
    expect(queues[0]![1].Properties).toMatchObject({ FifoQueue: true, ContentBasedDeduplication: true });
  });

  it('a wake-up reaches the planes after its window is over: the wake-up queue delays every message by one window (2 s), so no plane sleeps for notBefore', () => {
    const queues = resourcesOf(synthesized.decision, 'AWS::SQS::Queue').filter(([id]) => id.startsWith('DecisionWakeUpQueue'));
    expect(queues[0]![1].Properties).toMatchObject({ DelaySeconds: 2 });
    expect(WAKE_WINDOW_MS).toBe(2_000);
  });

  it('fan-out rules forward Desired State Changed to every plane\'s bus, at most 5 targets a rule, each with the fan-out role', () => {
    const rules = resourcesOf(synthesized.decision, 'AWS::Events::Rule').filter(([, r]) => flatten((r.Properties as Json).EventPattern).includes('portsnare.decision'));
    expect(rules.length).toBe(2);
    const targets = rules.flatMap(([, r]) => {
      const props = r.Properties as { EventPattern: Json; Targets: Json[] };
      expect(props.EventPattern).toEqual({ source: ['portsnare.decision'], 'detail-type': ['Desired State Changed'], account: [SECURITY] });
      expect(props.Targets.length).toBeLessThanOrEqual(5);
      return props.Targets;
    });
    const expected = ACCOUNTS.flatMap((a) => REGIONS.map((r) => `arn:aws:events:${r}:${a}:event-bus/Portsnare-plane`));
    expect(targets.map((t) => flatten(t.Arn)).sort()).toEqual(expected.sort());
    for (const t of targets) expect(flatten(t.RoleArn)).toMatch(/^«DecisionFanOutRole[0-9A-F]+\.Arn»$/);
    const [[, role]] = resourcesOf(synthesized.decision, 'AWS::IAM::Role').filter(([id]) => id.startsWith('DecisionFanOutRole')) as [[string, Json]];
    expect((role.Properties as Json).RoleName).toBe('Portsnare-fanout');
    const grants = roleStatements(synthesized.decision, 'DecisionFanOutRole');
    for (const grant of grants) expect([grant.Effect, grant.Action, grant.Condition]).toEqual(['Allow', 'events:PutEvents', undefined]);
    expect(grants.flatMap((g) => list(g.Resource).map(flatten)).sort()).toEqual(expected.sort());
  });

  it('the desired-state table lets each plane\'s enforce role, in the organization, Query the active and changes indexes and nothing else', () => {
    const tables = new Map(resourcesOf(synthesized.decision, 'AWS::DynamoDB::Table').map(([, t]) => [(t.Properties as Json).TableName as string, t.Properties as Json]));
    const props = tables.get('Portsnare-decision') as { SSESpecification?: Json; ResourcePolicy: { PolicyDocument: { Statement: Statement[] } } };
    // cross-account access needs a key other than the AWS managed one (rbac-considerations.html)
    expect(props.SSESpecification?.SSEEnabled ?? false).toBe(false);
    const tableArn = 'arn:aws:dynamodb:eu-west-1:111111111111:table/Portsnare-decision';
    const roles = ACCOUNTS.flatMap((a) => REGIONS.map((r) => `arn:aws:iam::${a}:role/Portsnare-enforce-${r}`));
    const statements = props.ResourcePolicy.PolicyDocument.Statement;
    expect(statements).toHaveLength(1);
    expect(statements[0]!.Action).toBe('dynamodb:Query');
    expect(list(statements[0]!.Resource).map(flatten)).toEqual([`${tableArn}/index/active`, `${tableArn}/index/changes`]);
    expect(list(statements[0]!.Principal?.AWS).map(flatten).sort()).toEqual(ACCOUNTS.map((a) => `arn:aws:iam::${a}:root`));
    expect(statements[0]!.Condition).toEqual({ StringEquals: { 'aws:PrincipalOrgID': ORG }, ArnEquals: { 'aws:PrincipalArn': roles } });
  });

  it('the reports table lets each plane\'s enforce role UpdateItem only its own report', () => {
    const tables = new Map(resourcesOf(synthesized.decision, 'AWS::DynamoDB::Table').map(([, t]) => [(t.Properties as Json).TableName as string, t.Properties as Json]));
    const props = tables.get('Portsnare-plane-reports') as { SSESpecification?: Json; ResourcePolicy: { PolicyDocument: { Statement: Statement[] } } };
    expect(props.SSESpecification?.SSEEnabled ?? false).toBe(false);
    const reportsArn = 'arn:aws:dynamodb:eu-west-1:111111111111:table/Portsnare-plane-reports';
    const statements = props.ResourcePolicy.PolicyDocument.Statement;
    expect(statements).toHaveLength(ACCOUNTS.length * REGIONS.length);
    for (const account of ACCOUNTS) {
      for (const region of REGIONS) {
        const role = `arn:aws:iam::${account}:role/Portsnare-enforce-${region}`;
        const mine = statements.filter((s) => flatten(s.Condition?.ArnEquals?.['aws:PrincipalArn']) === role);
        expect(mine.map((s) => [s.Effect, s.Action, flatten(s.Resource), flatten(s.Principal?.AWS)])).toEqual([['Allow', 'dynamodb:UpdateItem', reportsArn, `arn:aws:iam::${account}:root`]]);
        expect(mine[0]!.Condition).toEqual({
          StringEquals: { 'aws:PrincipalOrgID': ORG },
          ArnEquals: { 'aws:PrincipalArn': role },
          'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [`PLANE#${account}/${region}`] },
        });
      }
    }
    const outputs = synthesized.decision.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(flatten(outputs.PortsnarePlaneReportsTable!.Value)).toMatch(/^«DecisionPlaneReports[0-9A-F]+»$/);
  });

  describe.each(ACCOUNTS.flatMap((a) => REGIONS.map((r) => [a, r] as const)))('the plane %s/%s', (account, region) => {
    const plane = (): Template => synthesized.planes.get(`${account}/${region}`)!;

    it('accepts on its bus only Desired State Changed from the decision account\'s fan-out role', () => {
      expect(busStatements(plane())).toEqual([
        {
          Sid: expect.any(String),
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::111111111111:root' },
          Action: 'events:PutEvents',
          Resource: expect.anything(),
          Condition: {
            StringEquals: { 'events:source': 'portsnare.decision', 'events:detail-type': 'Desired State Changed', 'aws:PrincipalOrgID': ORG },
            ArnEquals: { 'aws:PrincipalArn': 'arn:aws:iam::111111111111:role/Portsnare-fanout' },
          },
        },
      ]);
      const [[, bus]] = resourcesOf(plane(), 'AWS::Events::EventBus') as [[string, Json]];
      expect((bus.Properties as Json).Name).toBe('Portsnare-plane');
    });

    it('turns each fan-out event into a wake-up enforce parses, coalesced per second, never dropping a later second', () => {
      const rules = resourcesOf(plane(), 'AWS::Events::Rule').filter(([, r]) => flatten((r.Properties as Json).EventPattern).includes('portsnare.decision'));
      expect(rules).toHaveLength(2);
      const body = (event: Json): Json => {
        const rule = rules.find(([, r]) => {
          const notBefore = ((r.Properties as { EventPattern: { detail: { wakeUp: { notBefore: Array<{ exists: boolean }> } } } }).EventPattern.detail.wakeUp.notBefore)[0]!;
          return notBefore.exists === ('notBefore' in ((event.detail as Json).wakeUp as Json));
        })!;
        const [target] = (rule[1].Properties as { Targets: Array<{ InputTransformer: { InputPathsMap: Record<string, string>; InputTemplate: string }; SqsParameters: Json; Arn: unknown }> }).Targets;
        expect(target!.SqsParameters).toEqual({ MessageGroupId: 'enforce' });
        expect(flatten(target!.Arn)).toMatch(/^«PlaneEnforceQueue[0-9A-F]+\.Arn»$/);
        return JSON.parse(transform(target!.InputTransformer, event)) as Json;
      };
      const event = (wakeUp: Json, time: string): Json => ({ source: 'portsnare.decision', 'detail-type': 'Desired State Changed', account: SECURITY, time, detail: { wakeUp } });
      const a = body(event({ kind: 'enforce', notBefore: 1_767_000_001_500 }, '2026-11-29T20:00:00Z'));
      expect(a).toEqual({ kind: 'enforce', notBefore: 1_767_000_001_500 });
      expect(body(event({ kind: 'enforce', notBefore: 1_767_000_001_500 }, '2026-11-29T20:00:01Z'))).toEqual(a);
      expect(body(event({ kind: 'enforce', notBefore: 1_767_000_002_500 }, '2026-11-29T20:00:01Z'))).not.toEqual(a);
      const expire = body(event({ kind: 'expire' }, '2026-11-29T20:01:00Z'));
      expect(expire).toEqual({ kind: 'expire', at: '2026-11-29T20:01:00Z' });
      expect(body(event({ kind: 'expire' }, '2026-11-29T20:02:00Z'))).not.toEqual(expire);
      const queue = resourcesOf(plane(), 'AWS::SQS::Queue').find(([id]) => /^PlaneEnforceQueue[0-9A-F]+$/.test(id))!;
      expect(queue[1].Properties).toMatchObject({ FifoQueue: true, ContentBasedDeduplication: true });
    });

    it('runs enforce against the decision table, its own ledger and plane id', () => {
      const fn = resourcesOf(plane(), 'AWS::Lambda::Function').find(([id]) => id.startsWith('PlaneEnforceFunction'))!;
      const env = ((fn[1].Properties as Json).Environment as { Variables: Record<string, unknown> }).Variables;
      expect(flatten(env.TABLE_NAME)).toBe('arn:aws:dynamodb:eu-west-1:111111111111:table/Portsnare-decision');
      expect(flatten(env.LEDGER_TABLE_NAME)).toMatch(/^«PlaneLedger[0-9A-F]+»$/);
      expect(env.PLANE_ID).toBe(`${account}/${region}`);
      expect(env.REPORTS_TABLE_NAME).toBe('arn:aws:dynamodb:eu-west-1:111111111111:table/Portsnare-plane-reports');
      const schedules = resourcesOf(plane(), 'AWS::Scheduler::Schedule').map(([, s]) => (s.Properties as Json).ScheduleExpression);
      expect(schedules).toEqual(['rate(10 minutes)']);
    });

    it('gives the enforce role least privilege: the decision table\'s active and changes indexes, its own report, its own ACLs and IP sets', () => {
      const [[, role]] = resourcesOf(plane(), 'AWS::IAM::Role').filter(([id]) => id.startsWith('PlaneEnforceRole')) as [[string, Json]];
      expect((role.Properties as Json).RoleName).toBe(`Portsnare-enforce-${region}`);
      const statements = roleStatements(plane(), 'PlaneEnforceRole');
      const tableArn = 'arn:aws:dynamodb:eu-west-1:111111111111:table/Portsnare-decision';
      const reportsArn = 'arn:aws:dynamodb:eu-west-1:111111111111:table/Portsnare-plane-reports';
      const acls = account === SECURITY ? [] : [`arn:aws:ec2:${region}:${account}:network-acl/${ACL(account, region)}`];
      for (const s of statements) {
        expect(s.Effect).toBe('Allow');
        const resources = list(s.Resource).map(flatten);
        for (const action of list(s.Action)) {
          if (resources.includes('*')) expect(['ec2:DescribeNetworkAcls']).toContain(action);
          if (action.startsWith('dynamodb:') && resources.some((r) => r.startsWith(tableArn))) {
            expect(action).toBe('dynamodb:Query');
            expect(resources).toEqual([`${tableArn}/index/active`, `${tableArn}/index/changes`]);
          } else if (action.startsWith('dynamodb:') && resources.some((r) => r.startsWith(reportsArn))) {
            expect(action).toBe('dynamodb:UpdateItem');
            expect(resources).toEqual([reportsArn]);
            expect(s.Condition).toEqual({ 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [`PLANE#${account}/${region}`] } });
          } else if (action.startsWith('dynamodb:')) {
            for (const r of resources) expect(r).toMatch(/^«PlaneLedger[0-9A-F]+\.Arn»$/);
          }
          if (/^ec2:(Create|Replace|Delete)NetworkAclEntry$/.test(action)) expect(resources).toEqual(acls);
          if (action.startsWith('wafv2:')) {
            expect(['wafv2:GetIPSet', 'wafv2:UpdateIPSet']).toContain(action);
            for (const r of resources) expect(r).toMatch(/^«PlaneWafIpSet[A-Za-z0-9]+\.Arn»$/);
          }
        }
      }
      const actions = statements.flatMap((s) => list(s.Action));
      const onDecisionTable = statements.filter((s) => list(s.Resource).map(flatten).some((r) => r.startsWith(tableArn))).flatMap((s) => list(s.Action));
      expect(onDecisionTable.sort()).toEqual(['dynamodb:Query']);
      expect(actions.includes('ec2:CreateNetworkAclEntry')).toBe(acls.length > 0);
    });

    it('has CLOUDFRONT IP sets only in the us-east-1 plane that asked for them, and the FMS policies only in the administrator account', () => {
      const scopes = resourcesOf(plane(), 'AWS::WAFv2::IPSet').map(([, s]) => (s.Properties as Json).Scope);
      const regional = account !== '333333333333';
      const cloudfront = account === SECURITY && region === 'us-east-1';
      expect(scopes.sort()).toEqual([...(cloudfront ? ['CLOUDFRONT', 'CLOUDFRONT'] : []), ...(regional ? ['REGIONAL', 'REGIONAL'] : [])].sort());
      const policies = resourcesOf(plane(), 'AWS::FMS::Policy').map(([, p]) => p.Properties as Json);
      if (account !== SECURITY) {
        expect(policies).toEqual([]);
        return;
      }
      expect(policies.map((p) => p.ResourceType).sort()).toEqual([...(cloudfront ? ['AWS::CloudFront::Distribution'] : []), 'ResourceTypeList'].sort());
      for (const policy of policies) {
        expect(policy.IncludeMap).toEqual({ ORGUNIT: ['ou-ab12-cdef3456'] });
        const data = flatten((policy.SecurityServicePolicyData as Json).ManagedServiceData);
        expect(data).toMatch(/"type":"WAFV2","preProcessRuleGroups":\[\{"ruleGroupType":"RuleGroup","ruleGroupArn":"«PlaneWafRuleGroup(Regional|Cloudfront)[0-9A-F]+\.Arn»"/);
        expect(data).toContain('"overrideCustomerWebACLAssociation":false');
        // cdk destroy: Firewall Manager cleans up, so the plane's rule group is no longer referenced
        expect(policy.DeleteAllPolicyResources).toBe(true);
      }
    });
  });
});

describe('organization configuration', () => {
  it('creates no Firewall Manager policy when firewallManager is not configured', () => {
    const context = organizationContext();
    const organization = { ...(context.organization as Json) };
    delete organization.firewallManager;
    const { planes } = synth({ ...context, organization });
    for (const template of planes.values()) expect(resourcesOf(template, 'AWS::FMS::Policy')).toEqual([]);
  }, 180_000);

  it.each([
    [{ sensorPrincipals: [] }, /portsnare\.organization\.sensorPrincipals: needs at least one sensor role pattern/],
    [{ sensorPrincipals: ['*'] }, /portsnare\.organization\.sensorPrincipals\.0: must be an IAM role ARN or pattern .* \(got "\*"\)/],
    [{ organizationId: 'org-1' }, /portsnare\.organization\.organizationId: must be an organization id \(o-…\) \(got "org-1"\)/],
    [{ decision: { account: '1111', region: 'eu-west-1' } }, /portsnare\.organization\.decision\.account: must be a 12-digit account id \(got "1111"\)/],
    [{ planes: [{ account: '222222222222', region: 'eu-west-1', cloudfront: true }] }, /portsnare\.organization\.planes\.0\.cloudfront: CLOUDFRONT IP sets exist only in us-east-1, and this plane's region is "eu-west-1"/],
    [{ planes: [{ account: '222222222222', region: 'eu-west-1' }, { account: '222222222222', region: 'eu-west-1' }] }, /portsnare\.organization\.planes\.1: "222222222222\/eu-west-1" is already planes\.0/],
    [{ planes: [{ account: '222222222222', region: 'eu-west-1', naclIds: ['sg-123'] }] }, /portsnare\.organization\.planes\.0\.naclIds\.0: must be a network ACL id \(acl-…\) \(got "sg-123"\)/],
    [{ planes: [{ account: '222222222222', region: 'eu-west-1' }] }, /portsnare\.organization\.firewallManager\.adminAccount: "111111111111" has no plane with the REGIONAL scope/],
  ])('refuses %j naming the key and the value', (change, message) => {
    const context = organizationContext(change as Json);
    const parsed = parsePortsnareContext(context);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(message);
  });

  it('refuses an organization without vpcCidrs, naming the key', () => {
    const context = organizationContext();
    delete context.vpcCidrs;
    const parsed = parsePortsnareContext(context);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toMatch(/portsnare\.vpcCidrs: undefined: an organization needs its own networks' CIDRs/);
  });

  it('refuses single-account keys next to an organization', () => {
    const parsed = parsePortsnareContext({ ...organizationContext(), naclIds: ['acl-0123456789abcdef0'], sensor: { type: 'ec2' } });
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.error).toMatch(/portsnare\.naclIds: \["acl-0123456789abcdef0"\] is a single-account key/);
      expect(parsed.error).toMatch(/portsnare\.sensor: \{"type":"ec2"\} is a single-account key/);
    }
  });

  it('refuses a stackName that would make a role name too long for IAM', () => {
    const parsed = parsePortsnareContext({ ...organizationContext(), stackName: `P${'x'.repeat(60)}` });
    if (!parsed.ok) throw new Error(parsed.error);
    expect(() => addOrganizationStacks(new App(), parsed.value)).toThrow(/portsnare\.stackName: "Px+" makes the role name "Px+-enforce-eu-west-1" longer than IAM's 64 characters/);
  });
});

describe('the table policies of a large organization', () => {
  const REGIONS4 = ['eu-west-1', 'us-east-1', 'ap-southeast-2', 'eu-central-1'];
  const planesOf = (accounts: number): Array<{ account: string; region: string }> =>
    Array.from({ length: accounts }, (_, a) => String(100000000000 + a)).flatMap((account) => REGIONS4.map((region) => ({ account, region })));
  const decisionOf = (planes: Array<{ account: string; region: string }>): Statement[] => {
    const stack = new Stack(new App({ context: { ...projectApp().node.getAllContext(), 'aws:cdk:bundling-stacks': [] } }), 'D', { env: { account: SECURITY, region: 'eu-west-1' } });
    new DecisionPlane(stack, 'Decision', { organizationId: ORG, sensorPrincipals: [SENSORS], names: orgNames('Portsnare'), planes });
    return resourcesOf(Template.fromStack(stack), 'AWS::DynamoDB::Table').flatMap(([, table]) => {
      const policy = (table.Properties as { ResourcePolicy: { PolicyDocument: { Statement: Statement[] } } }).ResourcePolicy.PolicyDocument;
      expect(JSON.stringify(policy).length).toBeLessThanOrEqual(20 * 1024);
      return policy.Statement;
    });
  };

  it('names the enforce roles by pattern in the plane accounts and lists every report key when per-plane statements would pass 20 KB (50 accounts × 4 Regions)', () => {
    const planes = planesOf(50);
    const statements = decisionOf(planes);
    expect(statements.map((s) => s.Action).sort()).toEqual(['dynamodb:Query', 'dynamodb:UpdateItem']);
    for (const s of statements) {
      expect(list(s.Principal?.AWS).map(flatten).sort()).toEqual([...new Set(planes.map((p) => `arn:aws:iam::${p.account}:root`))].sort());
      expect(s.Condition?.ArnLike).toEqual({ 'aws:PrincipalArn': 'arn:aws:iam::*:role/Portsnare-enforce-*' });
      expect(s.Condition?.StringEquals).toEqual({ 'aws:PrincipalOrgID': ORG });
    }
    expect(statements.find((s) => s.Action === 'dynamodb:UpdateItem')!.Condition?.['ForAllValues:StringEquals']).toEqual({ 'dynamodb:LeadingKeys': planes.map((p) => `PLANE#${p.account}/${p.region}`) });
  });

  it('refuses, naming the key, an organization whose table policy would not fit even then', () => {
    expect(() => decisionOf(planesOf(200))).toThrow(/portsnare\.organization\.planes: 800 planes make the plane-reports table's resource-based policy \d+ bytes, over DynamoDB's 20480/);
  });
});
