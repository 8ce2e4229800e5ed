/**
 * `--stack` against a fake account (fake-stack.ts). State is seeded through the pipeline's own
 * repository (aws/repository.ts), so the command line reads what the functions write.
 */
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeNetworkAclsCommand } from '@aws-sdk/client-ec2';
import { GetIPSetCommand } from '@aws-sdk/client-wafv2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockRequestedSchema, UnblockRequestedSchema } from '../../core/commands';
import { type BlockRecord, lift } from '../../core/policy';
import { type CliResult, runBin, runCli, testEnv } from './cli';
import { AwsError, FakeAccount } from './fake-stack';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const STACK = 'portsnare-prod';

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

let aws: FakeAccount;
let table: string;
let bus: string;

function cli(args: string[]): Promise<CliResult> {
  return runCli([...args, '--stack', STACK, '--region', 'eu-west-1'], { now: () => NOW });
}

/** Writes a record as the decide function does: through the repository, over the stored version. */
async function save(tableName: string, block: BlockRecord, at = NOW): Promise<void> {
  const repository = aws.repository(tableName);
  const stored = await repository.get(block.target);
  if (!(await repository.save(block, stored?.version, at))) throw new Error(`the repository refused to save ${block.target}`);
}

/** Records a NACL entry in the stack's placement ledger, as the enforce function does when it writes it. */
async function placed(tableName: string, aclId: string, ruleNumber: number, cidr: string): Promise<void> {
  const ledger = aws.ledger(tableName);
  await ledger.pending(aclId, ruleNumber, cidr);
  await ledger.confirm(aclId, ruleNumber, cidr);
}

let looks: number;
let written: Promise<void> | undefined;

/**
 * The pipeline behind the bus, for --wait: it writes `block` once the command line has looked at
 * the record after the event and not found the change (no fixed delay), then runs `also`.
 */
function pipelineWritesAfterLook(block: BlockRecord, also: () => void = () => undefined): void {
  let pending: BlockRecord | undefined = block;
  aws.onGet = (_table, key) => {
    if (key.sk !== 'STATE') return;
    looks++;
    if (!pending) return;
    const change = pending;
    pending = undefined;
    written = save(table, change).then(also);
  };
}

beforeEach(() => {
  looks = 0;
  written = undefined;
  aws = new FakeAccount();
  ({ table, bus } = aws.addPortsnareStack(STACK, {
    settings: {
      guard: { allowlist: ['198.51.100.0/25'], blockableSpecialCidrs: ['198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] },
      // the same ACL listed twice is read once
      nacl: { aclIds: ['acl-0abc1234', 'acl-0abc1234'], ruleRange: [10, 60] },
    },
  }));
  aws.acls.set('acl-0abc1234', []);
});

afterEach(() => aws.restore());

describe('blocks --stack', () => {
  it('credits an entry of portsnare\'s shape only when this stack\'s placement ledger holds it (another stack may share the ACL)', async () => {
    await save(table, record('203.0.113.9'));
    await save(table, record('203.0.113.10'));
    aws.acls.set('acl-0abc1234', [
      { RuleNumber: 11, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.9/32' },
      { RuleNumber: 12, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.10/32' },
    ]);
    await placed(table, 'acl-0abc1234', 12, '203.0.113.10/32');

    const views = JSON.parse((await cli(['blocks', '--json'])).stdout) as Array<{ target: string; enforcedIn: string[] }>;

    expect(views.map((view) => [view.target, view.enforcedIn])).toEqual([
      ['203.0.113.10', ['nacl:acl-0abc1234#12']],
      ['203.0.113.9', ['pending (not in WAF or the NACLs yet)']],
    ]);
  });

  it('lists the active blocks from the index, soonest expiry first, across pages, with where WAF and the NACLs hold them', async () => {
    await save(table, record('203.0.113.9', { expiresAt: NOW + 7_200_000, offences: 2 }));
    aws.ipSets.set(`${STACK}-v4`, ['203.0.113.9/32', '203.0.113.7/32', '192.0.2.99/32']);
    aws.acls.set('acl-0abc1234', [
      { RuleNumber: 10, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.9/32' },
      { RuleNumber: 10, Protocol: '-1', RuleAction: 'deny', Egress: true, CidrBlock: '203.0.113.1/32' },
      { RuleNumber: 100, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.1/32' },
      { RuleNumber: 32767, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '0.0.0.0/0' },
    ]);
    await placed(table, 'acl-0abc1234', 10, '203.0.113.9/32');
    await save(table, record('203.0.113.7', { expiresAt: NOW + 600_000 }));
    await save(table, record('2001:db8::7', { expiresAt: NOW + 86_400_000 + 3_600_000 }));
    await save(table, record('203.0.113.1', { expiresAt: NOW + 5_000_000 }));
    await save(table, record('203.0.113.66', { active: false, liftedBy: 'expiry' }));
    await save(table, record('203.0.113.67', { expiresAt: NOW - 1000 }));

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
    await save(table, record('203.0.113.9'));
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
        simulated: false,
        sensors: ['i-0123456789abcdef0'],
      },
    ]);
  });

  it('says where it could not look instead of claiming a block is nowhere', async () => {
    await save(table, record('203.0.113.9'));
    aws.ipSets.delete(`${STACK}-v4`);
    aws.acls.clear();

    const result = await cli(['blocks', '--json']);

    expect(result.code).toBe(0);
    const [block] = JSON.parse(result.stdout) as Array<{ enforcedIn: string[] }>;
    expect(block?.enforcedIn).toEqual([
      expect.stringMatching(/^unknown: waf:portsnare-prod-v4 \(cannot read the IP set portsnare-prod-v4 \(REGIONAL\): WAFNonexistentItemException/),
      expect.stringMatching(/^unknown: nacl \(cannot read the network ACLs acl-0abc1234: InvalidNetworkAclID\.NotFound/),
    ]);
  });

  it('does not credit an operator\'s own deny entries inside the reserved range to portsnare', async () => {
    await save(table, record('203.0.113.9'));
    await save(table, record('203.0.113.10'));
    aws.acls.set('acl-0abc1234', [
      // a port-specific deny (ssh) and a deny of one protocol: the operator's, though inside [10, 60]
      { RuleNumber: 20, Protocol: '6', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.9/32', PortRange: { From: 22, To: 22 } },
      { RuleNumber: 21, Protocol: '17', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.10/32' },
      // a wide deny: no host of it is portsnare's
      { RuleNumber: 22, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.0/24' },
      { RuleNumber: 30, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.10/32' },
    ]);
    await placed(table, 'acl-0abc1234', 30, '203.0.113.10/32');

    const result = await cli(['blocks', '--json']);

    expect(result.code).toBe(0);
    const views = JSON.parse(result.stdout) as Array<{ target: string; enforcedIn: string[] }>;
    expect(views.map((view) => [view.target, view.enforcedIn])).toEqual([
      ['203.0.113.10', ['nacl:acl-0abc1234#30']],
      ['203.0.113.9', ['pending (not in WAF or the NACLs yet)']],
    ]);
  });

  it('fails with the AWS error name and the IP set when AWS denies reading it', async () => {
    await save(table, record('203.0.113.9'));
    aws.wafv2.on(GetIPSetCommand).rejects(new AwsError('AccessDeniedException', 'User: arn:aws:iam::111122223333:user/ops is not authorized to perform: wafv2:GetIPSet'));

    const result = await cli(['blocks']);

    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'portsnare: AWS denied read the IP set portsnare-prod-v4 (REGIONAL) (AccessDeniedException): User: arn:aws:iam::111122223333:user/ops is not authorized to perform: wafv2:GetIPSet\n',
    );
  });

  it('fails with the AWS error name and the ACLs when EC2 throttles the read (after the SDK\'s retries)', async () => {
    await save(table, record('203.0.113.9'));
    aws.ec2.on(DescribeNetworkAclsCommand).rejects(new AwsError('RequestLimitExceeded', 'Request limit exceeded.'));

    const result = await cli(['blocks']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("portsnare: AWS throttled read the network ACLs acl-0abc1234 (RequestLimitExceeded) after the SDK's retries: Request limit exceeded.");
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

describe('the stack\'s settings (its PortsnareSettings output)', () => {
  beforeEach(() => {
    // CloudFormation resolved the VPC's CIDR and its default ACL into the output's JSON
    ({ table } = aws.addPortsnareStack('Portsnare', {
      settings: {
        policy: { baseTtlSeconds: 3600 },
        guard: { protectedCidrs: ['10.20.0.0/16'], blockableSpecialCidrs: ['203.0.113.0/24'] },
        nacl: { aclIds: ['acl-0def00000000000aa'], ruleRange: [1, 99], quotaPerDirection: 20 },
        waf: { sets: [{ scope: 'REGIONAL', family: 'ipv4', name: 'Portsnare-v4', id: '11111111-1111-4111-8111-111111111111' }] },
      },
    }));
    aws.acls.set('acl-0def00000000000aa', [{ RuleNumber: 3, Protocol: '-1', RuleAction: 'deny', Egress: false, CidrBlock: '203.0.113.7/32' }]);
  });

  it('refuses the VPC\'s own CIDR', async () => {
    const result = await runCli(['block', '10.20.1.5', '--stack', 'Portsnare', '--region', 'eu-west-1']);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe('portsnare: refused: 10.20.1.5 is protected by protected network 10.20.0.0/16 (never-block guard from stack Portsnare settings); nothing was sent\n');
  });

  it('reads the NACL placement from the ACL the settings name', async () => {
    await save(table, record('203.0.113.7'));
    await placed(table, 'acl-0def00000000000aa', 3, '203.0.113.7/32');

    const result = await runCli(['blocks', '--json', '--stack', 'Portsnare', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as Array<{ enforcedIn: string[] }>)[0]?.enforcedIn).toEqual(['nacl:acl-0def00000000000aa#3']);
  });

  it('exits 4 and names the output and the stack when the stack has no settings output (an older portsnare)', async () => {
    aws.addPortsnareStack('old', { settings: null });

    const result = await runCli(['block', '203.0.113.7', '--stack', 'old', '--region', 'eu-west-1']);

    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^portsnare: stack old has no output PortsnareSettings: deploy this version of portsnare/);
    expect(aws.events).toHaveLength(0);
  });

  it('exits 1 and names the setting when the output does not validate', async () => {
    aws.addPortsnareStack('odd', { settings: { nacl: { ruleRange: [50, 10] } } });

    const result = await runCli(['status', '--stack', 'odd', '--region', 'eu-west-1']);

    expect(result.code).toBe(1);
    expect(result.stderr).toBe('portsnare: stack odd output PortsnareSettings is not valid portsnare settings: nacl.ruleRange: first rule number must not exceed the last\n');
  });

  it('exits 1 when the output is not JSON', async () => {
    aws.addPortsnareStack('torn');
    const stack = aws.stacks.get('torn');
    if (stack) aws.stacks.set('torn', { ...stack, outputs: { ...stack.outputs, PortsnareSettings: '{"guard":' } });

    const result = await runCli(['block', '203.0.113.7', '--stack', 'torn', '--region', 'eu-west-1']);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^portsnare: stack torn output PortsnareSettings is not JSON: /);
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

  it('carries --replace in the Block Requested event (the decide function replaces the active block\'s expiry and note)', async () => {
    const result = await cli(['block', '203.0.113.7', '--ttl', '1h', '--replace']);

    expect(result.code).toBe(0);
    expect(BlockRequestedSchema.parse(aws.events[0]?.detail)).toMatchObject({ target: '203.0.113.7', ttlSeconds: 3600, replace: true });
    await cli(['block', '203.0.113.8']);
    expect(aws.events[1]?.detail).not.toHaveProperty('replace');
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

  it('refuses special-purpose ranges by default when the settings do not open them', async () => {
    aws.addPortsnareStack('bare');

    const result = await runCli(['block', '10.1.2.3', '--stack', 'bare', '--region', 'eu-west-1']);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('refused: 10.1.2.3 is protected by special-purpose range private 10.0.0.0/8 (never-block guard from stack bare settings)');
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
    aws.onEvent = (event) => {
      const detail = BlockRequestedSchema.parse(event.detail);
      pipelineWritesAfterLook(record(detail.target, { reason: 'manual', expiresAt: NOW + (detail.ttlSeconds ?? 3600) * 1000 }), () => aws.ipSets.set(`${STACK}-v4`, [`${detail.target}/32`]));
    };

    const result = await cli(['block', '203.0.113.7', '--ttl', '90m', '--wait', '10', '--json']);
    await written;

    expect(result.code).toBe(0);
    expect(looks).toBeGreaterThan(1);
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
    await save(table, record('203.0.113.7'));

    const result = await cli(['unblock', '203.0.113.7']);

    expect(result.code).toBe(0);
    expect(aws.events).toHaveLength(1);
    expect(aws.events[0]).toMatchObject({ source: 'portsnare.cli', detailType: 'Unblock Requested' });
    expect(UnblockRequestedSchema.parse(aws.events[0]?.detail).target).toBe('203.0.113.7');
    expect(result.stdout).toMatch(/^requested an unblock of 203\.0\.113\.7 on portsnare-prod-bus \(event /);
  });

  it('exits 4 and sends nothing when the target is not blocked', async () => {
    await save(table, record('203.0.113.7', { active: false }));

    const result = await cli(['unblock', '203.0.113.7']);

    expect(result.code).toBe(4);
    expect(result.stderr).toBe(`portsnare: 203.0.113.7 is not blocked in stack ${STACK} (eu-west-1): no active block record\n`);
    expect(aws.events).toHaveLength(0);
  });

  it('with --wait, reports the unblock once the record is inactive', async () => {
    await save(table, record('203.0.113.7'));
    aws.onEvent = (event) => pipelineWritesAfterLook(record(String(event.detail['target']), { active: false, liftedBy: 'unblock by cli' }));

    const result = await cli(['unblock', '203.0.113.7', '--wait', '10', '--json']);
    await written;
    expect(looks).toBeGreaterThan(1);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ result: 'unblocked', target: '203.0.113.7' });
  });
});

describe('history --stack', () => {
  it('shows the current record and the history items oldest first', async () => {
    await save(table, record('203.0.113.7', { offences: 2, hitCount: 40 }));
    const repository = aws.repository(table);
    // written newest first: the command line orders them by time
    await repository.appendHistory(record('203.0.113.7', { offences: 2, hitCount: 40, expiresAt: NOW + 3_600_000 }), 'block', NOW - 60_000, { eventId: 'e2' });
    const first = record('203.0.113.7', { offences: 1, hitCount: 23, expiresAt: NOW - 82_800_000 });
    await repository.appendHistory(lift(first, 'expiry'), 'expire', NOW - 82_800_000);
    await repository.appendHistory(first, 'block', NOW - 86_400_000, { eventId: 'e1' });

    const result = await cli(['history', '203.0.113.7']);

    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      `203.0.113.7: blocked for 1h more (until 2026-11-21T13:00:00Z); reason sensor, offence 2, 40 hits, first seen 2026-11-21T11:50:00Z — stack ${STACK} (eu-west-1)`,
    );
    expect(lines[1]).toMatch(/^TIME\s+ACTION\s+DETAIL$/);
    expect(lines[2]).toBe('2026-11-20T12:00:00Z  block   reason sensor, offence 1, 23 hits, until 2026-11-20T13:00:00Z');
    expect(lines[3]).toBe('2026-11-20T13:00:00Z  expire  reason sensor, offence 1, 23 hits, liftedBy expiry');
    expect(lines[4]).toMatch(/^2026-11-21T11:59:00Z\s+block\s+reason sensor, offence 2/);
  });

  it('exits 4 for an address never seen', async () => {
    const result = await cli(['history', '203.0.113.99']);

    expect(result.code).toBe(4);
    expect(result.stderr).toBe(`portsnare: no history for 203.0.113.99 (stack ${STACK} (eu-west-1))\n`);
  });

  it('prints JSON', async () => {
    // as the decide function records an unblock the command line asked for
    const requestedBy = 'portsnare-cli:alice@ops';
    await aws.repository(table).appendHistory(lift(record('203.0.113.7', { reason: 'manual' }), `unblock by ${requestedBy}`), 'unblock', NOW - 60_000, { requestedBy });

    const result = await cli(['history', '203.0.113.7', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      target: '203.0.113.7',
      where: `stack ${STACK} (eu-west-1)`,
      current: null,
      entries: [
        {
          at: '2026-11-21T11:59:00.000Z',
          action: 'unblock',
          detail: 'reason manual, offence 1, 17 hits, requestedBy portsnare-cli:alice@ops, liftedBy unblock by portsnare-cli:alice@ops',
        },
      ],
    });
  });
});

describe('status --stack', () => {
  it('reports the stack, its table and bus, active blocks and blocks this minute', async () => {
    await save(table, record('203.0.113.7'));
    // the decide function counts each new block in its minute; the minute before does not count now
    const repository = aws.repository(table);
    for (let i = 0; i < 3; i++) expect(await repository.admitBurst(NOW, 100)).toBe(true);
    expect(await repository.admitBurst(NOW - 60_000, 100)).toBe(true);

    const result = await cli(['status']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`portsnare status — stack ${STACK} (eu-west-1)`);
    expect(result.stdout).toMatch(/stack\s+portsnare-prod CREATE_COMPLETE \(eu-west-1\)/);
    expect(result.stdout).toMatch(new RegExp(`table\\s+${table}`));
    expect(result.stdout).toMatch(/active blocks\s+1\n/);
    expect(result.stdout).toMatch(/circuit breaker\s+closed: 3 of 100 new blocks this minute\n/);
    expect(result.stdout).toMatch(/never-block guard\s+stack portsnare-prod settings/);
  });

  it('says the circuit breaker is open, and exits 6, when the minute\'s blocks reach the stack\'s burst limit', async () => {
    const { table: busy } = aws.addPortsnareStack('busy', { settings: { policy: { burstLimitPerMinute: 5 } } });
    const repository = aws.repository(busy);
    while (await repository.admitBurst(NOW, 5));

    const result = await runCli(['status', '--stack', 'busy', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(6);
    expect(result.stdout).toMatch(/circuit breaker\s+OPEN: 5 new blocks this minute, limit 5 — new blocks are refused until the minute drains/);
  });

  it('prints JSON and exits 6 when the stack is not in a healthy state', async () => {
    aws.addPortsnareStack('broken', { status: 'UPDATE_ROLLBACK_COMPLETE' });

    const result = await runCli(['status', '--json', '--stack', 'broken', '--region', 'eu-west-1'], { now: () => NOW });

    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toMatchObject({
      where: 'stack broken (eu-west-1)',
      healthy: false,
      stackStatus: 'UPDATE_ROLLBACK_COMPLETE',
      activeBlocks: 0,
      blocksThisMinute: 0,
      burstLimitPerMinute: 100,
    });
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
