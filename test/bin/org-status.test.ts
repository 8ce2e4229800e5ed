/**
 * `portsnare status --org --stack DECISION_STACK`, run through the program with the real SDK
 * clients: DescribeStacks against the CloudFormation wire fake (cloudformation-wire.ts) and the
 * plane reports in a real DynamoDB engine (dynalite), written by the enforce function's own writer
 * (PlaneReports.record). The expected health, lag and times are worked out by hand from the
 * documented rule (core/org.ts: silent after two reconcile periods, 20 minutes by default, without a report, lagging while the last
 * run did not converge, the lag counted from the last converged run).
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CloudClients } from '../../bin/commands/stack/clients';
import type { EnforceFailure, EnforceMode, EnforceSummary } from '../../lambda/shared/enforcer';
import { PlaneReports } from '../../aws/plane-reports';
import { type LocalTable, startDynalite } from '../wire/dynalite';
import { type CliResult, runCli } from './cli';
import { CloudFormationWire } from './cloudformation-wire';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const REGION = 'eu-west-1';
const STACK = 'org-decision';
const MINUTE = 60_000;
const CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' };

const A = '111111111111/eu-west-1';
const B = '222222222222/us-east-1';
const C = '333333333333/ap-southeast-2';
const D = '444444444444/eu-central-1';

let ddb: LocalTable;
let cfn: CloudFormationWire;
let table: string;
let tables = 0;
const regions: Array<string | undefined> = [];

/** The SDK clients the command line gets: real ones, over HTTP, to the two local services. */
function clients(region: string | undefined): CloudClients {
  regions.push(region);
  const unused = 'http://127.0.0.1:9';
  return {
    cloudFormation: cfn.client(region ?? REGION),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({ region: REGION, endpoint: ddb.endpoint, credentials: CREDENTIALS, maxAttempts: 2 }), {
      marshallOptions: { removeUndefinedValues: true },
    }),
    // status --org calls neither EventBridge, WAF nor EC2: a call would fail on the closed port
    events: new EventBridgeClient({ region: REGION, endpoint: unused, credentials: CREDENTIALS, maxAttempts: 1 }),
    waf: () => {
      throw new Error('status --org reads no WAF IP set');
    },
    ec2: new EC2Client({ region: REGION, endpoint: unused, credentials: CREDENTIALS, maxAttempts: 1 }),
    cloudWatch: new CloudWatchClient({ region: REGION, endpoint: unused, credentials: CREDENTIALS, maxAttempts: 1 }),
  };
}

function cli(args: readonly string[]): Promise<CliResult> {
  return runCli(['status', '--org', ...args], { now: () => NOW, cloud: clients });
}

function decisionStack(planes: unknown, options: { status?: string; tableName?: string; name?: string; reconcileMinutes?: string } = {}): void {
  cfn.stacks.set(options.name ?? STACK, {
    ...(options.status ? { status: options.status } : {}),
    // the output keys spelled out: a renamed key in core/outputs.ts must fail these tests
    outputs: {
      PortsnareTableName: 'org-desired-state',
      PortsnarePlaneReportsTable: options.tableName ?? table,
      PortsnareEventBusName: 'org-decision-bus',
      ...(planes === undefined ? {} : { PortsnarePlanes: typeof planes === 'string' ? planes : JSON.stringify(planes) }),
      ...(options.reconcileMinutes === undefined ? {} : { PortsnareReconcileMinutes: options.reconcileMinutes }),
    },
  });
}

function summary(converged: boolean, desired: number, failures: readonly string[] = []): EnforceSummary {
  const failed: EnforceFailure[] = failures.map((point) => ({ point, error: 'ThrottlingException', message: 'Rate exceeded', transient: true }));
  return { passes: 1, changes: 0, blocked: 0, unblocked: 0, converged, failures: failed, desired };
}

/** One enforce run of a plane, written as the enforce function writes it. */
function run(id: string, at: number, converged: boolean, desired: number, failures: readonly string[] = [], mode: EnforceMode = 'enforce'): Promise<void> {
  return new PlaneReports(ddb.doc, table).record(id, summary(converged, desired, failures), mode, at);
}

beforeAll(async () => {
  ddb = await startDynalite('org-decision-0');
  cfn = new CloudFormationWire();
  await cfn.start();
});

afterAll(async () => {
  await cfn.stop();
  await ddb.stop();
});

beforeEach(async () => {
  table = await ddb.addTable(`org-decision-${++tables}`);
  cfn.stacks.clear();
  regions.length = 0;
});

/** A healthy plane, a lagging one, a silent one, one that never reported, and a report of a plane the stack does not list. */
async function fourPlanes(): Promise<void> {
  decisionStack([A, B, C, D]);
  await run(A, NOW - 2 * MINUTE, true, 3, [], 'reconcile');
  await run(B, NOW - 9 * MINUTE, true, 5);
  await run(B, NOW - 1 * MINUTE, false, 6, ['waf:portsnare-cf-v4', 'nacl:acl-0abc1234']);
  await run(C, NOW - 25 * MINUTE, true, 3);
  await run('555555555555/eu-west-1', NOW - MINUTE, true, 3);
}

describe('status --org --stack DECISION_STACK', () => {
  it('shows each listed plane: health, lag, last run, converged, desired count, failed points; exits 6 when one is not healthy', async () => {
    await fourPlanes();

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(6);
    expect(regions).toEqual([REGION]);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 4)).toEqual([
      `portsnare status --org — decision stack ${STACK} (${REGION})`,
      `stack   ${STACK} CREATE_COMPLETE (${REGION})`,
      `table   ${table}`,
      'planes  4: 1 healthy, 1 lagging, 1 silent, 1 never reported',
    ]);
    expect(lines[5]).toMatch(/^PLANE\s+HEALTH\s+LAG\s+LAST RUN\s+CONVERGED\s+DESIRED\s+FAILED POINTS$/);
    expect(lines.slice(6).map((line) => line.split(/\s{2,}/))).toEqual([
      [A, 'healthy', '0s', '2026-11-21T11:58:00Z (2m ago)', 'yes', '3', '-'],
      // behind since its last converged run, 9 minutes ago, though it ran a minute ago
      [B, 'lagging', '9m', '2026-11-21T11:59:00Z (1m ago)', 'no', '6', 'waf:portsnare-cf-v4, nacl:acl-0abc1234'],
      // converged when it last ran, but that was 25 minutes ago: more than two reconcile periods
      [C, 'silent', '0s', '2026-11-21T11:35:00Z (25m ago)', 'yes', '3', '-'],
      [D, 'never reported', '-', 'never', '-', '-', '-'],
    ]);
    expect(result.stdout).not.toContain('555555555555');
  });

  it('prints the same facts as JSON', async () => {
    await fourPlanes();

    const result = await cli(['--json', '--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toEqual({
      where: `decision stack ${STACK} (${REGION})`,
      healthy: false,
      backend: 'org',
      stack: STACK,
      region: REGION,
      stackStatus: 'CREATE_COMPLETE',
      table,
      planes: [
        { planeId: A, health: 'healthy', lagSeconds: 0, silentSeconds: 120, lastRunAt: '2026-11-21T11:58:00.000Z', lastConvergedAt: '2026-11-21T11:58:00.000Z', converged: true, desired: 3, failures: [], mode: 'reconcile' },
        {
          planeId: B,
          health: 'lagging',
          lagSeconds: 540,
          silentSeconds: 60,
          lastRunAt: '2026-11-21T11:59:00.000Z',
          lastConvergedAt: '2026-11-21T11:51:00.000Z',
          converged: false,
          desired: 6,
          failures: ['waf:portsnare-cf-v4', 'nacl:acl-0abc1234'],
          mode: 'enforce',
        },
        { planeId: C, health: 'silent', lagSeconds: 0, silentSeconds: 1500, lastRunAt: '2026-11-21T11:35:00.000Z', lastConvergedAt: '2026-11-21T11:35:00.000Z', converged: true, desired: 3, failures: [], mode: 'enforce' },
        { planeId: D, health: 'never reported', lagSeconds: null, silentSeconds: null, lastRunAt: null, lastConvergedAt: null, converged: null, desired: null, failures: [], mode: null },
      ],
    });
  });

  it('exits 0 when every plane reported a converged run within 10 minutes (the tenth minute included)', async () => {
    decisionStack([A, B, A]);
    await run(A, NOW - 10 * MINUTE, true, 0);
    await run(B, NOW, true, 0);

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('planes  2: 2 healthy\n');
    expect(result.stdout).toMatch(new RegExp(`${A}\\s+healthy\\s+0s\\s+2026-11-21T11:50:00Z \\(10m ago\\)`));
  });

  it('counts the lag of a plane that never converged from its first run, not its latest', async () => {
    decisionStack([A]);
    await run(A, NOW - 30 * MINUTE, false, 4, ['nacl:acl-0abc1234']);
    await run(A, NOW - 5 * MINUTE, false, 4, ['nacl:acl-0abc1234']);

    const result = await cli(['--json', '--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toMatchObject({ planes: [{ planeId: A, health: 'lagging', lagSeconds: 1800, silentSeconds: 300, lastConvergedAt: null }] });
  });

  it('exits 6 when every plane is healthy but the decision stack is not in a good state', async () => {
    decisionStack([A], { status: 'UPDATE_ROLLBACK_COMPLETE' });
    await run(A, NOW, true, 1);

    const result = await cli(['--json', '--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toMatchObject({ healthy: false, stackStatus: 'UPDATE_ROLLBACK_COMPLETE', planes: [{ planeId: A, health: 'healthy' }] });
  });

  it('reads every plane of a large organization (BatchGetItem takes at most 100 keys a call)', async () => {
    const ids = Array.from({ length: 130 }, (_, i) => `${String(100000000000 + i)}/eu-west-1`);
    decisionStack(ids);
    for (const id of ids.slice(0, 129)) await run(id, NOW - MINUTE, true, 2);

    const result = await cli(['--json', '--stack', STACK, '--region', REGION]);

    const planes = (JSON.parse(result.stdout) as { planes: Array<{ planeId: string; health: string }> }).planes;
    expect(planes.map((plane) => plane.planeId)).toEqual(ids);
    expect(planes.filter((plane) => plane.health === 'healthy')).toHaveLength(129);
    expect(planes[129]).toMatchObject({ planeId: ids[129], health: 'never reported' });
    expect(result.code).toBe(6);
  });

  it('says so when the stack lists no planes, and exits 0', async () => {
    decisionStack([]);

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('planes  0: the stack lists no enforcement planes');
    expect(result.stdout).not.toContain('PLANE ');
  });
});

describe('status --org errors', () => {
  it('counts a plane silent after two of the organization\'s reconcile periods (the stack\'s PortsnareReconcileMinutes; 10 when a stack has no such output)', async () => {
    decisionStack([A, C], { reconcileMinutes: '30' });
    await run(A, NOW - 2 * MINUTE, true, 3);
    await run(C, NOW - 25 * MINUTE, true, 3); // quiet: a reconcile every 30 minutes is its only run
    let result = await cli(['--stack', STACK, '--json']);
    expect((JSON.parse(result.stdout) as { planes: Array<{ health: string }> }).planes.map((p) => p.health)).toEqual(['healthy', 'healthy']);
    decisionStack([A, C]);
    await run(C, NOW - 15 * MINUTE, true, 3);
    result = await cli(['--stack', STACK, '--json']);
    expect((JSON.parse(result.stdout) as { planes: Array<{ health: string }> }).planes.map((p) => p.health)).toEqual(['healthy', 'healthy']);
    decisionStack([A, C], { reconcileMinutes: 'ten' });
    result = await cli(['--stack', STACK]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('portsnare: stack org-decision output PortsnareReconcileMinutes is not a whole number of minutes: "ten"\n');
  });

  it('exits 4 and names the output when the stack is not a decision stack (no PortsnarePlanes)', async () => {
    decisionStack(undefined);

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^portsnare: stack org-decision has no output PortsnarePlanes: is it an organization's decision stack\?/);
  });

  it('exits 1 and names the output and the value when a plane id is not "<account>/<region>"', async () => {
    decisionStack([A, '1111/eu-west-1']);

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('portsnare: stack org-decision output PortsnarePlanes: "1111/eu-west-1" is not a plane id "<account>/<region>"\n');
  });

  it('exits 1 when the output is not a JSON array', async () => {
    decisionStack('111111111111/eu-west-1');

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^portsnare: stack org-decision output PortsnarePlanes is not JSON: "111111111111\/eu-west-1"/);
  });

  it('exits 4 with DynamoDB\'s error name when the reports table does not exist', async () => {
    decisionStack([A], { tableName: 'deleted-table' });

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^portsnare: cannot read the plane reports in table deleted-table: ResourceNotFoundException: /);
  });

  it('exits 4 for an unknown stack, naming it and the Region', async () => {
    const result = await cli(['--stack', 'nope', '--region', REGION]);

    expect(result.code).toBe(4);
    expect(result.stderr).toContain('portsnare: unknown stack "nope" in eu-west-1: no such CloudFormation stack');
  });

  it('exits 1 with the AWS error name when CloudFormation denies the caller', async () => {
    decisionStack([A]);
    cfn.failNext('AccessDenied', 'User: arn:aws:iam::111111111111:user/ops is not authorized to perform: cloudformation:DescribeStacks', 403);

    const result = await cli(['--stack', STACK, '--region', REGION]);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^portsnare: AWS denied describe stack org-decision \(AccessDenied\): User: .* cloudformation:DescribeStacks/);
  });

  it('exits 2 without --stack, and with a local option, before asking AWS anything', async () => {
    const before = cfn.requests.length;
    const alone = await cli([]);
    const local = await cli(['--stack', STACK, '--state-dir', '/tmp/nowhere']);

    expect([alone.code, alone.stderr]).toEqual([2, "portsnare: --org needs --stack DECISION_STACK (the organization's decision stack)\n"]);
    expect([local.code, local.stderr]).toEqual([2, 'portsnare: --org reads the decision stack: do not combine it with --state-dir\n']);
    expect(cfn.requests.length).toBe(before);
  });
});
