/**
 * Every finding lib/ acknowledges (lib/nag.ts `acknowledge`) must still occur: the stacks are
 * synthesized with acknowledgements switched off (context portsnare:acknowledgeFindings=false)
 * and cdk-nag AwsSolutions, CDK's annotation report and CloudFormation's own template
 * validation must each report the acknowledged id. An acknowledgement nothing needs fails here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ACKNOWLEDGE_FINDINGS_CONTEXT, parsePortsnareContext, PortsnareStack } from '../../lib';
import { addOrganizationStacks } from '../../lib/org';
import { projectApp } from './helpers';

// CloudFormation's template validation runs on app.synth() (W2508 is one of its rules).
process.env.CDK_VALIDATION = 'true';

const EXISTING_VPC = {
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  availabilityZones: ['eu-west-1a'],
  publicSubnetIds: ['subnet-0123456789abcdef0'],
};

/** The apps that together make every acknowledgement: the demo (EC2 sensor), a Fargate sensor in an existing VPC, and an organization (decision and plane stacks). */
const SCENARIOS = {
  ec2: { alarmEmail: 'ops@example.com', sensor: { type: 'ec2', flowLogs: true }, securityHub: { enabled: true } },
  fargate: { sensor: { type: 'fargate', vpc: EXISTING_VPC } },
  org: {
    alarmEmail: 'ops@example.com',
    securityHub: { enabled: true },
    vpcCidrs: ['10.0.0.0/8'],
    organization: {
      organizationId: 'o-a1b2c3d4e5',
      decision: { account: '111111111111', region: 'eu-west-1' },
      sensorPrincipals: ['arn:aws:iam::*:role/portsnare-sensor-*'],
      planes: [{ account: '222222222222', region: 'eu-west-1', naclIds: ['acl-0123456789abcdef0'] }],
    },
  },
} as const;
type Scenario = keyof typeof SCENARIOS;

/** Each acknowledged finding id, and a stack it is acknowledged in. Logical ids are the stack's (fixed). */
const ACKNOWLEDGED: Array<[string, Scenario]> = [
  ['AwsSolutions-L1', 'ec2'],
  ['AwsSolutions-IAM5[Resource::*]', 'ec2'],
  ['AwsSolutions-IAM5[Resource::<BlockerTableA23BA474.Arn>/index/*]', 'ec2'],
  ['AwsSolutions-IAM5[Resource::<BlockerExpiryFunction4F6142E4.Arn>:*]', 'ec2'],
  ['AwsSolutions-IAM5[Resource::<BlockerReconcileFunctionF9E9F8A8.Arn>:*]', 'ec2'],
  ['AwsSolutions-IAM5[Resource::<BlockerCleanupFunction31EE9A13.Arn>:*]', 'ec2'],
  ['AwsSolutions-IAM5[Resource::<BlockerFindingsFunctionCFEA712F.Arn>:*]', 'ec2'],
  ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'ec2'],
  ['AwsSolutions-EC23', 'ec2'],
  ['AwsSolutions-EC28', 'ec2'],
  ['AwsSolutions-EC29', 'ec2'],
  ['CloudFormation-Validate::W2508', 'ec2'],
  ['AwsSolutions-ECS2', 'fargate'],
  ['AwsSolutions-ECS4', 'fargate'],
  ['AwsSolutions-IAM5[Resource::*]', 'fargate'],
  ['AwsSolutions-EC23', 'fargate'],
  ['CloudFormation-Validate::W2508', 'fargate'],
  ['Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId', 'fargate'],
  ['AwsSolutions-SQS3', 'org'],
  ['AwsSolutions-L1', 'org'],
  ['AwsSolutions-IAM5[Resource::*]', 'org'],
  ['AwsSolutions-IAM5[Resource::<DecisionTableDDFA0517.Arn>/index/*]', 'org'],
  ['AwsSolutions-IAM5[Resource::<DecisionExpiryFunctionAE6C6CB5.Arn>:*]', 'org'],
  ['AwsSolutions-IAM5[Resource::<DecisionFindingsFunction06755AD3.Arn>:*]', 'org'],
  ['AwsSolutions-IAM5[Resource::<PlaneReconcileFunction5F345F94.Arn>:*]', 'org'],
  ['AwsSolutions-IAM5[Resource::<PlaneCleanupFunction9E3155AF.Arn>:*]', 'org'],
  ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'org'],
];

/** What lib/ acknowledged, through lib/nag.ts (CDK's own constructs acknowledge a few ids of their own). */
const recorded = vi.hoisted(() => [] as Array<{ root: unknown; id: string }>);
vi.mock('../../lib/nag', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../lib/nag')>();
  return {
    ...real,
    acknowledge: (scope: IConstruct, id: string, reason: string): void => {
      recorded.push({ root: scope.node.root, id });
      real.acknowledge(scope, id, reason);
    },
    // acknowledges IAM5[Resource::*] on the read-only policy it makes
    wildcardReadPolicy: (...args: Parameters<typeof real.wildcardReadPolicy>) => {
      recorded.push({ root: args[0].node.root, id: 'AwsSolutions-IAM5[Resource::*]' });
      return real.wildcardReadPolicy(...args);
    },
    // acknowledges the LambdaInvoke wildcard on the scheduler's role
    acknowledgeScheduledInvoke: (...args: Parameters<typeof real.acknowledgeScheduledInvoke>) => {
      recorded.push({ root: args[0].node.root, id: real.arnWildcardFinding(args[1], ':*') });
      real.acknowledgeScheduledInvoke(...args);
    },
  };
});

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

function appFor(scenario: Scenario, acknowledge: boolean): App {
  const flags = projectApp().node.getAllContext();
  const outdir = mkdtempSync(path.join(tmpdir(), 'portsnare-nag-'));
  outdirs.push(outdir);
  // No bundling: the findings do not depend on the functions' code.
  const app = new App({ outdir, context: { ...flags, [ACKNOWLEDGE_FINDINGS_CONTEXT]: acknowledge, 'aws:cdk:bundling-stacks': [] } });
  const parsed = parsePortsnareContext(SCENARIOS[scenario]);
  if (!parsed.ok) throw new Error(parsed.error);
  if (parsed.value.organization) addOrganizationStacks(app, parsed.value);
  else new PortsnareStack(app, 'Portsnare', { config: parsed.value });
  return app;
}

/** The ids lib/ acknowledged in `app`. */
function acknowledgedIds(app: App): Set<string> {
  return new Set(recorded.filter((r) => r.root === app).map((r) => r.id));
}

/** The ids acknowledged anywhere in `app` (CDK's acknowledged-rules metadata, cdk-nag ids prefixed "Annotation::"). */
function metadataIds(app: App): Set<string> {
  const ids = new Set<string>();
  for (const construct of app.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) for (const id of Object.keys(entry.data as object)) ids.add(id.replace(/^Annotation::(?=AwsSolutions-)/, ''));
    }
  }
  return ids;
}

/** Every rule id the synthesis reports with nothing acknowledged: cdk-nag, annotations, CloudFormation validation. */
function findings(app: App): Set<string> {
  const ids = new Set(new AwsSolutionsChecks().validateScope(app).violations.map((v) => v.ruleName));
  try {
    app.synth();
  } catch {
    // Findings at error level stop the synthesis; the report is written all the same.
  }
  const report = JSON.parse(readFileSync(path.join(app.outdir, 'validation-report.json'), 'utf8')) as {
    pluginReports: Array<{ pluginName: string; violations: Array<{ ruleName: string }> }>;
  };
  // Acknowledgement ids name the plugin ("CloudFormation-Validate::W2508"); annotation rules carry theirs.
  for (const plugin of report.pluginReports) {
    for (const { ruleName } of plugin.violations) ids.add(ruleName.includes('::') ? ruleName : `${plugin.pluginName.replace(/ /g, '-')}::${ruleName}`);
  }
  return ids;
}

const acknowledged: Partial<Record<Scenario, Set<string>>> = {};
const found: Partial<Record<Scenario, Set<string>>> = {};

beforeAll(() => {
  for (const scenario of Object.keys(SCENARIOS) as Scenario[]) {
    acknowledged[scenario] = acknowledgedIds(appFor(scenario, true));
    found[scenario] = findings(appFor(scenario, false));
  }
}, 300_000);

describe('cdk-nag and validation acknowledgements', () => {
  it('lists every id lib/ acknowledges, and only those', () => {
    const all = new Set(Object.values(acknowledged).flatMap((ids) => [...ids]));
    expect([...all].sort()).toEqual([...new Set(ACKNOWLEDGED.map(([id]) => id))].sort());
    for (const [id, scenario] of ACKNOWLEDGED) expect(acknowledged[scenario], `${id} in the ${scenario} stack`).toContain(id);
  });

  it('records what lib/ acknowledges as CDK acknowledgements, and nothing when portsnare:acknowledgeFindings is false', () => {
    const lib = new Set(ACKNOWLEDGED.map(([id]) => id));
    expect([...metadataIds(appFor('fargate', true))].filter((id) => lib.has(id)).length).toBeGreaterThan(0);
    expect([...metadataIds(appFor('fargate', false))].filter((id) => lib.has(id))).toEqual([]);
  });

  it.each(ACKNOWLEDGED)('%s is still reported without its acknowledgement (%s stack)', (id, scenario) => {
    expect([...found[scenario]!]).toContain(id);
  });
});
