import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockRequestedSchema, UnblockRequestedSchema } from '../../core/commands';
import type { BlockRecord } from '../../core/policy';
import { type CliResult, runBin, runCli, testEnv } from './cli';
import { AwsError, FakeAccount } from './fake-stack';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const STACK = 'portsnare-prod';

function record(target: string, overrides: Partial<BlockRecord> = {}): BlockRecord & { enforcedIn?: string[] } {
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

/** A template whose functions carry PORTSNARE_SETTINGS, as the CDK app writes it. */
function templateWithGuard(guard: Record<string, unknown>): unknown {
  return {
    Resources: {
      DecideFunction: {
        Type: 'AWS::Lambda::Function',
        Properties: {
          Environment: {
            Variables: {
              PORTSNARE_SETTINGS: {
                'Fn::Join': ['', ['{"guard":', JSON.stringify(guard), ',"nacl":{"aclIds":["acl-0abc1234",""', ',"', { Ref: 'Acl' }, '"],"ruleRange":[10,60]},"waf":{"sets":[{"id":"', { 'Fn::GetAtt': ['Set', 'Id'] }, '"}]}}']],
              },
            },
          },
        },
      },
    },
  };
}

let aws: FakeAccount;
let table: string;
let bus: string;

function cli(args: string[]): Promise<CliResult> {
  return runCli([...args, '--stack', STACK, '--region', 'eu-west-1'], { now: () => NOW });
}

beforeEach(() => {
  aws = new FakeAccount();
  ({ table, bus } = aws.addPortsnareStack(STACK, { template: templateWithGuard({ allowlist: ['198.51.100.0/25'], blockableSpecialCidrs: ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] }) }));
  aws.acls.set('acl-0abc1234', []);
  // the template's second ACL id is a Ref to the same ACL (listed twice, read once)
  aws.resources.set(STACK, new Map([['Acl', 'acl-0abc1234']]));
});

afterEach(() => aws.restore());

describe('blocks --stack', () => {
  it('lists the active blocks from the index, soonest expiry first, across pages, with where WAF and the NACLs hold them', async () => {
    aws.putRecord(table, record('203.0.113.9', { expiresAt: NOW + 7_200_000, offences: 2 }));
    aws.ipSets.set(`${STACK}-v4`, ['203.0.113.9/32', '203.0.113.7/32', '192.0.2.99/32']);
    aws.acls.set('acl-0abc1234', [
      { RuleNumber: 10, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.9/32' },
      { RuleNumber: 10, Protocol: '-1', RuleAction: 'deny', Egress: true, CidrBlock: '203.0.113.1/32' },
      { RuleNumber: 100, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.1/32' },
      { RuleNumber: 32767, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '0.0.0.0/0' },
    ]);
    aws.putRecord(table, record('203.0.113.7', { expiresAt: NOW + 600_000 }));
    aws.putRecord(table, record('2001:db8::7', { expiresAt: NOW + 86_400_000 + 3_600_000 }));
    aws.putRecord(table, record('203.0.113.1', { expiresAt: NOW + 5_000_000 }));
    aws.putRecord(table, record('203.0.113.66', { active: false, liftedBy: 'expiry' }));
    aws.putRecord(table, record('203.0.113.67', { expiresAt: NOW - 1000 }));

    const result = await cli(['blocks']);

    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ADDRESS\s+REASON\s+OFFENCES\s+HITS\s+EXPIRES IN\s+ENFORCED IN/);
    expect(lines.slice(1, 5).map((line) => line.split(/\s+/)[0])).toEqual(['203.0.113.7', '203.0.113.1', '203.0.113.9', '2001:db8::7']);
    expect(lines[1]).toMatch(/^203\.0\.113\.7\s+sensor\s+1\s+17\s+10m\s+waf:portsnare-prod-v4$/);
    // rule 100 is outside portsnare's range [10, 60] and an egress entry is not a block of the source
    expect(lines[2]).toMatch(/^203\.0\.113\.1\s+sensor\s+1\s+17\s+1h 23m\s+pending \(not in WAF or the NACLs yet\)$/);
    expect(lines[3]).toMatch(/^203\.0\.113\.9\s+sensor\s+2\s+17\s+2h\s+waf:portsnare-prod-v4, nacl:acl-0abc1234#10$/);
    expect(lines[4]).toMatch(/^2001:db8::7\s+sensor\s+1\s+17\s+1d 1h\s+pending/);
    expect(lines[5]).toBe(`4 active blocks (stack ${STACK} (eu-west-1))`);
    expect(result.stdout).not.toContain('203.0.113.66');
    expect(result.stdout).not.toContain('203.0.113.67');
  });

  it('prints JSON with ISO times and seconds to expiry', async () => {
    aws.putRecord(table, record('203.0.113.9'));
    aws.ipSets.set(`${STACK}-v4`, ['203.0.113.9/32']);

    const result = await cli(['blocks', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      {
        target: '203.0.113.9',
        family: 'ipv4',
        reason: 'sensor',
        offences: 1,
        hitCount: 17,
        firstSeen: '2026-11-21T11:50:00.000Z',
        lastSeen: '2026-11-21T11:59:00.000Z',
        blockedAt: '2026-11-21T11:59:00.000Z',
        expiresAt: '2026-11-21T13:00:00.000Z',
        expiresInSeconds: 3600,
        active: true,
        enforcedIn: ['waf:portsnare-prod-v4'],
        sensors: ['i-0123456789abcdef0'],
      },
    ]);
  });

  it('says where it could not look instead of claiming a block is nowhere', async () => {
    aws.putRecord(table, record('203.0.113.9'));
    aws.ipSets.delete(`${STACK}-v4`);
    aws.acls.clear();

    const result = await cli(['blocks', '--json']);

    expect(result.code).toBe(0);
    const [block] = JSON.parse(result.stdout) as Array<{ enforcedIn: string[] }>;
    expect(block?.enforcedIn).toEqual([
      expect.stringMatching(/^unknown: waf:portsnare-prod-v4 \(cannot read the IP set: WAFNonexistentItemException/),
      expect.stringMatching(/^unknown: nacl \(cannot read the network ACLs: InvalidNetworkAclID\.NotFound/),
    ]);
  });

  it('says so when nothing is blocked', async () => {
    const result = await cli(['blocks']);

    expect(result).toEqual({ code: 0, stdout: `no active blocks (stack ${STACK} (eu-west-1))\n`, stderr: '' });
  });

  it('exits 4 with the stack and Region named when the stack does not exist', async () => {
    const result = await runCli(['blocks', '--stack', 'nope', '--region', 'eu-west-1']);

    expect(result.code).toBe(4);
    expect(result.stderr).toBe('portsnare: unknown stack "nope" in eu-west-1: no such CloudFormation stack (check --stack and --region / AWS_REGION)\n');
    expect(result.stdout).toBe('');
  });

  it('exits 4 when the stack is not a portsnare stack', async () => {
    aws.stacks.set('web', { name: 'web', outputs: { LoadBalancerDns: 'x' } });

    const result = await runCli(['blocks', '--stack', 'web', '--region', 'eu-west-1']);

    expect(result.code).toBe(4);
    expect(result.stderr).toContain('stack web in eu-west-1 has no PortsnareTableName and PortsnareEventBusName output');
  });

  it('exits 5 and says what to set when the SDK finds no credentials', async () => {
    const error = new Error('Could not load credentials from any providers');
    error.name = 'CredentialsProviderError';
    aws.cloudFormation.on(DescribeStacksCommand).rejects(error);

    const result = await cli(['blocks']);

    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/^portsnare: no AWS credentials \(describe stack portsnare-prod\): set AWS_PROFILE .* or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
  });

  it('exits 5 when AWS rejects expired credentials', async () => {
    aws.cloudFormation.on(DescribeStacksCommand).rejects(new AwsError('ExpiredToken', 'The security token included in the request is expired'));

    const result = await cli(['status']);

    expect(result.code).toBe(5);
    expect(result.stderr).toContain('AWS rejected the credentials (ExpiredToken');
  });
});

describe('a stack whose settings hold tokens (the CDK app\'s demo VPC)', () => {
  /** PORTSNARE_SETTINGS as `cdk synth` writes it when the VPC is in the same stack. */
  const demoTemplate = {
    Resources: {
      BlockerDecideFunction: {
        Type: 'AWS::Lambda::Function',
        Properties: {
          Environment: {
            Variables: {
              PORTSNARE_SETTINGS: {
                'Fn::Join': [
                  '',
                  [
                    '{"policy":{"baseTtlSeconds":3600},"guard":{"allowlist":[],"protectedCidrs":["',
                    { 'Fn::GetAtt': ['Vpc8378EB38', 'CidrBlock'] },
                    '"],"blockableSpecialCidrs":["203.0.113.0/24"]},"nacl":{"aclIds":["',
                    { 'Fn::GetAtt': ['Vpc8378EB38', 'DefaultNetworkAcl'] },
                    '"],"ruleRange":[1,99],"quotaPerDirection":20},"waf":{"sets":[{"scope":"REGIONAL","family":"ipv4","name":"v4","id":"',
                    { 'Fn::GetAtt': ['BlockerIpSet', 'Id'] },
                    '"}]}}',
                  ],
                ],
              },
            },
          },
        },
      },
    },
  };

  beforeEach(() => {
    ({ table } = aws.addPortsnareStack('Portsnare', { template: demoTemplate }));
    aws.resources.set('Portsnare', new Map([['Vpc8378EB38', 'vpc-0123456789abcdef0']]));
    aws.vpcs.set('vpc-0123456789abcdef0', { cidr: '10.20.0.0/16', defaultAcl: 'acl-0def00000000000aa' });
    aws.acls.set('acl-0def00000000000aa', [{ RuleNumber: 3, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.7/32' }]);
  });

  it('refuses the VPC\'s own CIDR, resolved from the deployed stack', async () => {
    const result = await runCli(['block', '10.20.1.5', '--stack', 'Portsnare', '--region', 'eu-west-1']);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe('portsnare: refused: 10.20.1.5 is protected by protected network 10.20.0.0/16 (never-block guard from stack Portsnare settings); nothing was sent\n');
  });

  it('reads the NACL placement from the VPC\'s default ACL', async () => {
    aws.putRecord(table, record('203.0.113.7'));

    const result = await runCli(['blocks', '--json', '--stack', 'Portsnare', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as Array<{ enforcedIn: string[] }>)[0]?.enforcedIn).toEqual(['nacl:acl-0def00000000000aa#3']);
  });

  it('says how many template values it could not resolve, and still applies the literal rules', async () => {
    aws.resources.clear();

    const result = await runCli(['status', '--stack', 'Portsnare', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/never-block guard\s+stack Portsnare settings \(2 values of the template could not be resolved\)/);
  });
});

describe('block --stack', () => {
  it('asks the pipeline with a Block Requested event from portsnare.cli and writes nothing itself', async () => {
    const result = await cli(['block', '203.0.113.7', '--ttl', '2h', '--reason', 'seen in the WAF logs']);

    expect(result.code).toBe(0);
    expect(aws.events).toHaveLength(1);
    const [event] = aws.events;
    expect(event).toMatchObject({ bus, source: 'portsnare.cli', detailType: 'Block Requested' });
    const detail = BlockRequestedSchema.parse(event?.detail);
    expect(detail).toMatchObject({ version: 1, target: '203.0.113.7', ttlSeconds: 7200, reason: 'seen in the WAF logs' });
    expect(detail.requestedBy).toMatch(/^portsnare-cli:.+@.+/);
    expect(result.stdout).toContain(`requested a block of 203.0.113.7 for 2h on ${bus} (event ${event?.id})`);
    expect(aws.table(table).size).toBe(0);
  });

  it('canonicalizes the target: an IPv4-mapped IPv6 address is its IPv4 address, a CIDR keeps its prefix', async () => {
    await cli(['block', '::ffff:203.0.113.8']);
    await cli(['block', '2001:DB8:0:0::/48']);

    expect(aws.events.map((event) => event.detail['target'])).toEqual(['203.0.113.8', '2001:db8::/48']);
  });

  it('refuses an allowlisted address with the rule from the stack\'s own settings, and sends nothing', async () => {
    const result = await cli(['block', '198.51.100.7']);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`portsnare: refused: 198.51.100.7 is protected by allowlist 198.51.100.0/25 (never-block guard from stack ${STACK} settings); nothing was sent\n`);
    expect(aws.events).toHaveLength(0);
  });

  it('refuses a CIDR that overlaps the allowlist', async () => {
    const result = await cli(['block', '198.51.100.0/24']);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('allowlist 198.51.100.0/25');
  });

  it('refuses special-purpose ranges by default when the template holds no settings', async () => {
    aws.addPortsnareStack('bare');

    const result = await runCli(['block', '10.1.2.3', '--stack', 'bare', '--region', 'eu-west-1']);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('refused: 10.1.2.3 is protected by special-purpose range private 10.0.0.0/8 (never-block guard from built-in defaults');
    expect(aws.events).toHaveLength(0);
  });

  it.each([
    ['not-an-ip', /invalid target "not-an-ip": not an IPv4 or IPv6 address or CIDR/],
    ['203.0.113.7/24', /the host bits of a CIDR must be zero — did you mean 203\.0\.113\.0\/24\?/],
    ['300.1.1.1', /not an IPv4 or IPv6 address/],
  ])('exits 2 on the invalid target %s before calling AWS', async (target, message) => {
    const result = await cli(['block', target]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(aws.cloudFormation.calls()).toHaveLength(0);
  });

  it.each([
    ['2x', /invalid --ttl "2x": use a number with s, m, h, d or w/],
    ['30s', /must be between 60s \(1m\) and 365d/],
    ['400d', /must be between 60s \(1m\) and 365d/],
  ])('exits 2 on the invalid --ttl %s', async (ttl, message) => {
    const result = await cli(['block', '203.0.113.7', '--ttl', ttl]);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(aws.events).toHaveLength(0);
  });

  it('with --wait, reports the block once the pipeline has written it', async () => {
    aws.onEvent = (event, account) => {
      const detail = BlockRequestedSchema.parse(event.detail);
      setTimeout(() => {
        account.putRecord(table, record(detail.target, { reason: 'manual', expiresAt: NOW + (detail.ttlSeconds ?? 3600) * 1000 }));
        account.ipSets.set(`${STACK}-v4`, [`${detail.target}/32`]);
      }, 200);
    };

    const result = await cli(['block', '203.0.113.7', '--ttl', '90m', '--wait', '10', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ result: 'blocked', block: { target: '203.0.113.7', reason: 'manual', expiresInSeconds: 5400, enforcedIn: ['waf:portsnare-prod-v4'] } });
  });

  it('with --wait, fails when the pipeline never writes the block', async () => {
    const result = await cli(['block', '203.0.113.7', '--wait', '1']);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/block of 203\.0\.113\.7 requested \(event .+\) but not in the table after 1s/);
  });

  it('exits 1 with EventBridge\'s error code when the entry fails', async () => {
    aws.buses.delete(bus);

    const result = await cli(['block', '203.0.113.7']);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`portsnare: EventBridge refused the Block Requested event: ResourceNotFoundException Event bus ${bus} does not exist.\n`);
  });
});

describe('unblock --stack', () => {
  it('sends Unblock Requested for an active block', async () => {
    aws.putRecord(table, record('203.0.113.7'));

    const result = await cli(['unblock', '203.0.113.7']);

    expect(result.code).toBe(0);
    expect(aws.events).toHaveLength(1);
    expect(aws.events[0]).toMatchObject({ source: 'portsnare.cli', detailType: 'Unblock Requested' });
    expect(UnblockRequestedSchema.parse(aws.events[0]?.detail).target).toBe('203.0.113.7');
    expect(result.stdout).toMatch(/^requested an unblock of 203\.0\.113\.7 on portsnare-prod-bus \(event /);
  });

  it('exits 4 and sends nothing when the target is not blocked', async () => {
    aws.putRecord(table, record('203.0.113.7', { active: false }));

    const result = await cli(['unblock', '203.0.113.7']);

    expect(result.code).toBe(4);
    expect(result.stderr).toBe(`portsnare: 203.0.113.7 is not blocked in stack ${STACK} (eu-west-1): no active block record\n`);
    expect(aws.events).toHaveLength(0);
  });

  it('with --wait, reports the unblock once the record is inactive', async () => {
    aws.putRecord(table, record('203.0.113.7'));
    aws.onEvent = (event, account) => setTimeout(() => account.putRecord(table, record(String(event.detail['target']), { active: false, liftedBy: 'cli' })), 100);

    const result = await cli(['unblock', '203.0.113.7', '--wait', '10', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ result: 'unblocked', target: '203.0.113.7' });
  });
});

describe('history --stack', () => {
  it('shows the current record and the history items oldest first', async () => {
    aws.putRecord(table, record('203.0.113.7', { offences: 2, hitCount: 40 }));
    aws.putHistory(table, '203.0.113.7', NOW - 86_400_000, 'block', { reason: 'sensor', offences: 1, hitCount: 23, expiresAt: NOW - 82_800_000 });
    aws.putHistory(table, '203.0.113.7', NOW - 82_800_000, 'expire', {});
    aws.putHistory(table, '203.0.113.7', NOW - 60_000, 'block', { reason: 'sensor', offences: 2, hitCount: 40, expiresAt: NOW + 3_600_000 });

    const result = await cli(['history', '203.0.113.7']);

    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      `203.0.113.7: blocked for 1h more (until 2026-11-21T13:00:00Z); reason sensor, offence 2, 40 hits, first seen 2026-11-21T11:50:00Z — stack ${STACK} (eu-west-1)`,
    );
    expect(lines[1]).toMatch(/^TIME\s+ACTION\s+DETAIL$/);
    expect(lines[2]).toBe('2026-11-20T12:00:00Z  block   reason sensor, offence 1, 23 hits, until 2026-11-20T13:00:00Z');
    expect(lines[3]).toMatch(/^2026-11-20T13:00:00Z\s+expire$/);
    expect(lines[4]).toMatch(/^2026-11-21T11:59:00Z\s+block\s+reason sensor, offence 2/);
  });

  it('exits 4 for an address never seen', async () => {
    const result = await cli(['history', '203.0.113.99']);

    expect(result.code).toBe(4);
    expect(result.stderr).toBe(`portsnare: no history for 203.0.113.99 (stack ${STACK} (eu-west-1))\n`);
  });

  it('prints JSON', async () => {
    aws.putHistory(table, '203.0.113.7', NOW - 60_000, 'block', { reason: 'manual', requestedBy: 'portsnare-cli:alice@ops' });

    const result = await cli(['history', '203.0.113.7', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      target: '203.0.113.7',
      where: `stack ${STACK} (eu-west-1)`,
      current: null,
      entries: [{ at: '2026-11-21T11:59:00.000Z', action: 'block', detail: 'reason manual, requestedBy portsnare-cli:alice@ops' }],
    });
  });
});

describe('status --stack', () => {
  it('reports the stack, its table and bus, active blocks and blocks this minute', async () => {
    aws.putRecord(table, record('203.0.113.7'));
    aws.table(table).set(`BURST\u0000MINUTE#${Math.floor(NOW / 60_000) * 60_000}`, { pk: 'BURST', sk: `MINUTE#${Math.floor(NOW / 60_000) * 60_000}`, count: 3 });

    const result = await cli(['status']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`portsnare status — stack ${STACK} (eu-west-1)`);
    expect(result.stdout).toMatch(/stack\s+portsnare-prod CREATE_COMPLETE \(eu-west-1\)/);
    expect(result.stdout).toMatch(new RegExp(`table\\s+${table}`));
    expect(result.stdout).toMatch(/active blocks\s+1\n/);
    expect(result.stdout).toMatch(/circuit breaker\s+3 new blocks this minute \(it opens at the stack's burstLimitPerMinute\)/);
    expect(result.stdout).toMatch(/never-block guard\s+stack portsnare-prod settings/);
  });

  it('says the circuit breaker is open, and exits 6, when the minute\'s blocks reach the stack\'s burst limit', async () => {
    const minute = Math.floor(NOW / 60_000) * 60_000;
    const { table: busy } = aws.addPortsnareStack('busy', {
      template: { Resources: { Decide: { Type: 'AWS::Lambda::Function', Properties: { Environment: { Variables: { PORTSNARE_SETTINGS: '{"policy":{"burstLimitPerMinute":5}}' } } } } } },
    });
    aws.table(busy).set(`BURST\u0000MINUTE#${minute}`, { pk: 'BURST', sk: `MINUTE#${minute}`, count: 5 });

    const result = await runCli(['status', '--stack', 'busy', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/circuit breaker\s+OPEN: 5 new blocks this minute, limit 5 — new blocks are refused until the minute drains/);
  });

  it('prints JSON and exits 6 when the stack is not in a healthy state', async () => {
    aws.addPortsnareStack('broken', { status: 'UPDATE_ROLLBACK_COMPLETE' });

    const result = await runCli(['status', '--json', '--stack', 'broken', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toMatchObject({ where: 'stack broken (eu-west-1)', healthy: false, stackStatus: 'UPDATE_ROLLBACK_COMPLETE', activeBlocks: 0, blocksThisMinute: 0 });
  });
});

describe('option errors', () => {
  it('exits 2 when --region comes without --stack', async () => {
    const result = await runCli(['blocks', '--region', 'eu-west-1']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('portsnare: --region needs --stack NAME (without it the command works on this host)\n');
  });

  it('exits 2 on an unknown option, with the help hint', async () => {
    const result = await runCli(['blocks', '--frobnicate']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("error: unknown option '--frobnicate'");
  });
});

describe('the real SDK, no credentials (child process)', () => {
  it('exits 5 and names AWS_PROFILE and AWS_ACCESS_KEY_ID', async () => {
    // no mocks in the child: the SDK's own provider chain runs and finds nothing (IMDS disabled, no files)
    const result = await runBin(['blocks', '--stack', STACK, '--region', 'eu-west-1'], { env: testEnv() });

    expect(result.code).toBe(5);
    expect(result.stderr).toContain('portsnare: no AWS credentials (describe stack portsnare-prod): set AWS_PROFILE');
    expect(result.stderr).toContain('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
    expect(result.stderr).not.toContain('NodeVersionSupportWarning');
  });

  it('exits 5 and names --region and AWS_REGION when no Region is set', async () => {
    const result = await runBin(['blocks', '--stack', STACK], { env: testEnv() });

    expect(result.code).toBe(5);
    expect(result.stderr).toContain('no AWS Region: pass --region REGION or set AWS_REGION');
  });
});
