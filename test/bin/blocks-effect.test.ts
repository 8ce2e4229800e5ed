/**
 * `blocks --stack`: proof of effect in the cloud (issue 21 item 5). The REAL CloudWatchClient reads
 * AWS/WAFV2 BlockedRequests over HTTP from the CloudWatch wire fake (test/wire/cloudwatch-server.ts),
 * which answers only a metric with the exact dimensions it was published with and only in the
 * Region it was published in, as CloudWatch does; the stack, its table and its IP sets come from
 * the fake account (fake-stack.ts).
 *
 * What AWS WAF publishes for a rule inside a rule group, and where: the dimensions Rule (the rule's
 * metric name), RuleGroup (the group's metric name) and Region, except for CloudFront, whose
 * metrics carry no Region and are in us-east-1; a blocking rule also publishes a WebACL-dimensioned
 * copy (https://docs.aws.amazon.com/waf/latest/developerguide/waf-metrics.html). GetMetricData's
 * paging and per-query StatusCode:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
 *
 * The expected names are spelled out here (the IP set names of lib/WafBlocklist.ts, rules
 * portsnare-<family>-<shard> in the group <prefix>-regional or <prefix>-cloudfront, whose metric
 * name is its name), not imported from core/waf-metrics.ts.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cloudClients } from '../../bin/commands/stack/clients';
import type { BlockRecord } from '../../core/policy';
import { CloudWatchWire } from '../wire/cloudwatch-server';
import { type CliResult, runCli } from './cli';
import { FakeAccount } from './fake-stack';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const MINUTE = 60_000;
const STACK = 'portsnare-prod';
const PREFIX = 'portsnare-prod-PortsnareWafBlocklistA1B2C3D4';
const ACCOUNT = '111122223333';
const GROUP = { REGIONAL: `${PREFIX}-regional`, CLOUDFRONT: `${PREFIX}-cloudfront` };
const SETS = {
  v4a: { name: `${PREFIX}-regional-ipv4-0`, arn: `arn:aws:wafv2:eu-west-1:${ACCOUNT}:regional/ipset/${PREFIX}-regional-ipv4-0/aaaaaaaa-0000-4000-8000-000000000001` },
  v4b: { name: `${PREFIX}-regional-ipv4-1`, arn: `arn:aws:wafv2:eu-west-1:${ACCOUNT}:regional/ipset/${PREFIX}-regional-ipv4-1/aaaaaaaa-0000-4000-8000-000000000002` },
  v6a: { name: `${PREFIX}-regional-ipv6-0`, arn: `arn:aws:wafv2:eu-west-1:${ACCOUNT}:regional/ipset/${PREFIX}-regional-ipv6-0/aaaaaaaa-0000-4000-8000-000000000003` },
  cf4: { name: `${PREFIX}-cloudfront-ipv4-0`, arn: `arn:aws:wafv2:us-east-1:${ACCOUNT}:global/ipset/${PREFIX}-cloudfront-ipv4-0/aaaaaaaa-0000-4000-8000-000000000004` },
};

let aws: FakeAccount;
let cw: CloudWatchWire;
let table: string;

beforeAll(async () => {
  cw = new CloudWatchWire();
  cw.now = () => NOW;
  await cw.start();
});

afterAll(() => cw.stop());

beforeEach(() => {
  aws = new FakeAccount();
  ({ table } = aws.addPortsnareStack(STACK));
  const stack = aws.stacks.get(STACK)!;
  aws.stacks.set(STACK, { ...stack, outputs: { ...stack.outputs, PortsnareIpSetArns: Object.values(SETS).map((set) => set.arn).join(',') } });
  for (const set of Object.values(SETS)) aws.ipSets.set(set.name, []);
  cw.reset();
});

afterEach(() => aws.restore());

function record(target: string, overrides: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target,
    family: target.includes(':') ? 'ipv6' : 'ipv4',
    reason: 'sensor',
    firstSeen: NOW - 600_000,
    lastSeen: NOW - 60_000,
    hitCount: 17,
    offences: 1,
    blockedAt: NOW - 60_000,
    expiresAt: NOW + 3_600_000,
    active: true,
    eventIds: ['e1'],
    sensors: ['i-0123456789abcdef0'],
    ...overrides,
  };
}

async function save(block: BlockRecord): Promise<void> {
  const repository = aws.repository(table);
  if (!(await repository.save(block, undefined, NOW))) throw new Error(`the repository refused to save ${block.target}`);
}

function cli(args: readonly string[], metrics = true): Promise<CliResult> {
  return runCli(['blocks', ...args, '--stack', STACK, '--region', 'eu-west-1'], {
    now: () => NOW,
    cloud: (region) => {
      const clients = { ...cloudClients(region), cloudWatch: cw.client(region ?? 'eu-west-1') };
      return metrics ? { ...clients, metrics: (r: string) => cw.client(r) } : { ...clients, metrics: undefined };
    },
  });
}

/** BlockedRequests of a rule of the stack's group, as WAF publishes it (REGIONAL: with Region; CloudFront: in us-east-1, without). */
function blocked(region: string, rule: string, at: number, value: number, extra: Record<string, string> = {}): void {
  const dimensions = region === 'us-east-1' ? { Rule: rule, RuleGroup: GROUP.CLOUDFRONT, ...extra } : { Region: region, Rule: rule, RuleGroup: GROUP.REGIONAL, ...extra };
  cw.publishIn(region, 'AWS/WAFV2', 'BlockedRequests', dimensions, at, value);
}

async function threeBlocks(): Promise<void> {
  await save(record('203.0.113.9', { expiresAt: NOW + 600_000 }));
  await save(record('203.0.113.7', { expiresAt: NOW + 1_200_000 }));
  await save(record('2001:db8::7', { expiresAt: NOW + 1_800_000 }));
  aws.ipSets.set(SETS.v4a.name, ['203.0.113.9/32', '192.0.2.10/32']);
  aws.ipSets.set(SETS.v4b.name, ['203.0.113.7/32']);
  aws.ipSets.set(SETS.v6a.name, ['2001:db8::7/128']);
  aws.ipSets.set(SETS.cf4.name, ['203.0.113.9/32']);
}

describe('blocks --stack: what each WAF rule blocked in the last hour', () => {
  it('sums BlockedRequests of each IP set rule over the hour, per scope in its own Region, and credits each block with the sets that hold it', async () => {
    await threeBlocks();
    // regional ipv4-0: 5 + 7 in the hour; 100 two hours ago is outside it
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 50 * MINUTE, 5);
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 10 * MINUTE, 7);
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 120 * MINUTE, 100);
    // the same rule counted (not blocked) and its WebACL-dimensioned copy: neither is this metric
    cw.publishIn('eu-west-1', 'AWS/WAFV2', 'CountedRequests', { Region: 'eu-west-1', Rule: 'portsnare-ipv4-0', RuleGroup: GROUP.REGIONAL }, NOW - 5 * MINUTE, 50);
    // another portsnare stack's rule of the same name, in its own group: not this stack's
    cw.publishIn('eu-west-1', 'AWS/WAFV2', 'BlockedRequests', { Region: 'eu-west-1', Rule: 'portsnare-ipv4-1', RuleGroup: 'portsnare-staging-PortsnareWafBlocklist9Z8Y-regional' }, NOW - 5 * MINUTE, 70);
    blocked('eu-west-1', 'portsnare-ipv6-0', NOW - 5 * MINUTE, 9, { WebACL: 'shop' });
    // CloudFront: in us-east-1 without Region; the same dimensions in eu-west-1 are another metric
    blocked('us-east-1', 'portsnare-ipv4-0', NOW - 3 * MINUTE, 4);
    cw.publishIn('eu-west-1', 'AWS/WAFV2', 'BlockedRequests', { Rule: 'portsnare-ipv4-0', RuleGroup: GROUP.CLOUDFRONT }, NOW - 3 * MINUTE, 1000);

    const result = await cli([]);

    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines[1]).toMatch(new RegExp(`^203\\.0\\.113\\.9\\s+sensor\\s+1\\s+17\\s+10m\\s+waf:${SETS.v4a.name}, waf:${SETS.cf4.name}$`));
    expect(lines[2]).toMatch(new RegExp(`^203\\.0\\.113\\.7\\s+.*waf:${SETS.v4b.name}$`));
    expect(lines[4]).toBe(`3 active blocks (stack ${STACK} (eu-west-1))`);
    expect(lines[5]).toBe(
      'WAF requests blocked in the last 60 minutes, per IP set rule (AWS/WAFV2 BlockedRequests; WAF counts per rule, not per address: ENFORCED IN says which set holds a block):',
    );
    expect(lines[6]).toMatch(/^IP SET\s+SCOPE\s+RULE\s+BLOCKED$/);
    expect(lines.slice(7).map((line) => line.split(/\s{2,}/))).toEqual([
      [`waf:${SETS.v4a.name}`, 'REGIONAL', 'portsnare-ipv4-0', '12 requests'],
      [`waf:${SETS.v4b.name}`, 'REGIONAL', 'portsnare-ipv4-1', 'no data in the last hour: nothing was blocked, or the rule group is in no web ACL'],
      [`waf:${SETS.v6a.name}`, 'REGIONAL', 'portsnare-ipv6-0', 'no data in the last hour: nothing was blocked, or the rule group is in no web ACL'],
      [`waf:${SETS.cf4.name}`, 'CLOUDFRONT', 'portsnare-ipv4-0', '4 requests'],
    ]);

    // the queries as CloudWatch received them: one call per Region, the last hour in 1-minute sums
    const queries = [...cw.queries].sort((a, b) => a.region.localeCompare(b.region) || a.id.localeCompare(b.id));
    const window = { startTime: NOW / 1000 - 3600, endTime: NOW / 1000, period: 60, stat: 'Sum', namespace: 'AWS/WAFV2', metricName: 'BlockedRequests' };
    expect(queries).toEqual([
      { ...window, id: 'rule0', region: 'eu-west-1', dimensions: { Region: 'eu-west-1', Rule: 'portsnare-ipv4-0', RuleGroup: GROUP.REGIONAL } },
      { ...window, id: 'rule1', region: 'eu-west-1', dimensions: { Region: 'eu-west-1', Rule: 'portsnare-ipv4-1', RuleGroup: GROUP.REGIONAL } },
      { ...window, id: 'rule2', region: 'eu-west-1', dimensions: { Region: 'eu-west-1', Rule: 'portsnare-ipv6-0', RuleGroup: GROUP.REGIONAL } },
      { ...window, id: 'rule0', region: 'us-east-1', dimensions: { Rule: 'portsnare-ipv4-0', RuleGroup: GROUP.CLOUDFRONT } },
    ]);
    expect(cw.requests.filter((r) => r.op === 'GetMetricData')).toHaveLength(2);
  });

  it('gives each block, in --json, the rules of the sets that hold it with their count (null and a note when unknown)', async () => {
    await threeBlocks();
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 30 * MINUTE, 3);
    blocked('us-east-1', 'portsnare-ipv4-0', NOW - 30 * MINUTE, 1);

    const result = await cli(['--json']);

    expect(result.code).toBe(0);
    const views = JSON.parse(result.stdout) as Array<{ target: string; wafRules?: unknown }>;
    expect(views.map((view) => [view.target, view.wafRules])).toEqual([
      [
        '203.0.113.9',
        [
          { ipSet: SETS.v4a.name, scope: 'REGIONAL', rule: 'portsnare-ipv4-0', ruleGroup: GROUP.REGIONAL, blockedRequestsLastHour: 3 },
          { ipSet: SETS.cf4.name, scope: 'CLOUDFRONT', rule: 'portsnare-ipv4-0', ruleGroup: GROUP.CLOUDFRONT, blockedRequestsLastHour: 1 },
        ],
      ],
      ['203.0.113.7', [{ ipSet: SETS.v4b.name, scope: 'REGIONAL', rule: 'portsnare-ipv4-1', ruleGroup: GROUP.REGIONAL, blockedRequestsLastHour: null, note: 'no data in the last hour: nothing was blocked, or the rule group is in no web ACL' }]],
      ['2001:db8::7', [{ ipSet: SETS.v6a.name, scope: 'REGIONAL', rule: 'portsnare-ipv6-0', ruleGroup: GROUP.REGIONAL, blockedRequestsLastHour: null, note: 'no data in the last hour: nothing was blocked, or the rule group is in no web ACL' }]],
    ]);
  });

  it('still lists the blocks when CloudWatch denies GetMetricData, and says so per rule', async () => {
    await threeBlocks();
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 30 * MINUTE, 3);
    // both Regions' calls are denied (the user's policy lacks cloudwatch:GetMetricData)
    cw.failNext('GetMetricData', 'AccessDeniedException', 'User: arn:aws:iam::111122223333:user/ops is not authorized to perform: cloudwatch:GetMetricData', 'AccessDenied');
    cw.failNext('GetMetricData', 'AccessDeniedException', 'User: arn:aws:iam::111122223333:user/ops is not authorized to perform: cloudwatch:GetMetricData', 'AccessDenied');

    const result = await cli([]);

    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[4]).toBe(`3 active blocks (stack ${STACK} (eu-west-1))`);
    const rows = lines.slice(7).map((line) => line.split(/\s{2,}/));
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row[3]).toMatch(/^unavailable: AWS denied read the WAF rule metrics \(cloudwatch:GetMetricData in (eu-west-1|us-east-1)\) \(AccessDenied(Exception)?\): User: .* not authorized/);
  });

  it('says when CloudWatch answers Forbidden for one metric, and counts the others', async () => {
    await threeBlocks();
    blocked('eu-west-1', 'portsnare-ipv4-1', NOW - 30 * MINUTE, 2);
    cw.statusOverride.set('rule0', 'Forbidden');

    const rows = (await cli([])).stdout.trim().split('\n').slice(7).map((line) => line.split(/\s{2,}/)[3]);

    // rule0 is the first query of each Region's call: regional ipv4-0 and the CloudFront rule
    expect(rows).toEqual(['unavailable: CloudWatch answered Forbidden for this metric', '2 requests', 'no data in the last hour: nothing was blocked, or the rule group is in no web ACL', 'unavailable: CloudWatch answered Forbidden for this metric']);
  });

  it('follows NextToken and sums every page', async () => {
    await threeBlocks();
    for (let i = 1; i <= 5; i++) blocked('eu-west-1', 'portsnare-ipv4-0', NOW - i * 7 * MINUTE, i);
    blocked('eu-west-1', 'portsnare-ipv4-1', NOW - 2 * MINUTE, 10);
    cw.defaultMaxDatapoints = 2;

    const rows = (await cli([])).stdout.trim().split('\n').slice(7).map((line) => line.split(/\s{2,}/)[3]);

    expect(rows.slice(0, 2)).toEqual(['15 requests', '10 requests']);
    expect(cw.requests.filter((r) => r.op === 'GetMetricData').length).toBeGreaterThanOrEqual(4);
  });

  it('reports a CloudFront rule unavailable, not zero, when no client for us-east-1 is at hand', async () => {
    await threeBlocks();
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 30 * MINUTE, 3);

    const rows = (await cli([], false)).stdout.trim().split('\n').slice(7).map((line) => line.split(/\s{2,}/));

    expect(rows[0]![3]).toBe('3 requests');
    expect(rows[3]).toEqual([`waf:${SETS.cf4.name}`, 'CLOUDFRONT', 'portsnare-ipv4-0', 'unavailable: cannot read the WAF rule metrics (cloudwatch:GetMetricData in us-east-1): Error: no CloudWatch client for us-east-1']);
  });

  it('reads no metrics when no block is active', async () => {
    const result = await cli([]);

    expect(result).toEqual({ code: 0, stdout: `no active blocks (stack ${STACK} (eu-west-1))\n`, stderr: '' });
    expect(cw.requests).toEqual([]);
  });
});

describe('history --stack: the rule that holds the block', () => {
  it('says what the rules of the sets holding the current block did in the last hour, and that the count is the whole set\'s', async () => {
    await threeBlocks();
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 20 * MINUTE, 8);

    const result = await runCli(['history', '203.0.113.9', '--stack', STACK, '--region', 'eu-west-1'], {
      now: () => NOW,
      cloud: (region) => ({ ...cloudClients(region), cloudWatch: cw.client(region ?? 'eu-west-1'), metrics: (r: string) => cw.client(r) }),
    });

    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[1]).toBe(`  held by waf:${SETS.v4a.name}: its rule portsnare-ipv4-0 blocked 8 requests in the last hour (the whole set, not this address alone)`);
    expect(lines[2]).toBe(`  held by waf:${SETS.cf4.name}: its rule portsnare-ipv4-0: no data in the last hour: nothing was blocked, or the rule group is in no web ACL`);
  });
});

describe('blocks --stack in simulation (simulation: true, the rules count)', () => {
  it('reads CountedRequests, not BlockedRequests, says nothing is blocked, and gives countedRequestsLastHour in --json', async () => {
    ({ table } = aws.addPortsnareStack(STACK, { settings: { simulation: { all: true, inputs: [] } } }));
    const stack = aws.stacks.get(STACK)!;
    aws.stacks.set(STACK, { ...stack, outputs: { ...stack.outputs, PortsnareIpSetArns: Object.values(SETS).map((set) => set.arn).join(',') } });
    await threeBlocks();
    cw.publishIn('eu-west-1', 'AWS/WAFV2', 'CountedRequests', { Region: 'eu-west-1', Rule: 'portsnare-ipv4-0', RuleGroup: GROUP.REGIONAL }, NOW - 5 * MINUTE, 6);
    // a BlockedRequests point of the same rule is not what a counting rule reports
    blocked('eu-west-1', 'portsnare-ipv4-0', NOW - 5 * MINUTE, 900);

    const result = await cli([]);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[1]).toMatch(new RegExp(`^203\\.0\\.113\\.9\\s+sensor\\s+.*SIMULATED \\(in waf:${SETS.v4a.name}, waf:${SETS.cf4.name}\\)$`));
    expect(lines[5]).toBe(
      'SIMULATION: the WAF rules count, nothing is blocked. Requests counted in the last 60 minutes, per IP set rule (AWS/WAFV2 CountedRequests: what blocking would have stopped; per rule, not per address):',
    );
    expect(lines[6]).toMatch(/^IP SET\s+SCOPE\s+RULE\s+COUNTED$/);
    expect(lines[7]!.split(/\s{2,}/)).toEqual([`waf:${SETS.v4a.name}`, 'REGIONAL', 'portsnare-ipv4-0', '6 requests']);
    expect(lines[8]!.split(/\s{2,}/)[3]).toBe('no data in the last hour: nothing was counted, or the rule group is in no web ACL');
    expect(new Set(cw.queries.map((q) => q.metricName))).toEqual(new Set(['CountedRequests']));

    const json = JSON.parse((await cli(['--json'])).stdout) as Array<{ target: string; wafRules?: Array<Record<string, unknown>> }>;
    const rule = json.find((b) => b.target === '203.0.113.9')!.wafRules!.find((r) => r.ipSet === SETS.v4a.name)!;
    expect(rule).toMatchObject({ blockedRequestsLastHour: null, countedRequestsLastHour: 6 });
  });
});
