/**
 * `--stack` end to end on the pipeline's own fakes (test/fakes/world.ts): the command line's
 * PutEvents reaches the real decide handler (as the bus rule would deliver it), the enforce
 * function drains its queue into the WAF and NACL fakes, and the command line reads the table
 * and the enforcers back.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import type { CloudClients } from '../../bin/commands/stack/clients';
import { STACK_OUTPUTS } from '../../core/outputs';
import { ACL_A, SET_V4, SET_V6, World } from '../fakes/world';
import { type CliResult, runCli } from './cli';

const STACK = 'portsnare';
const REGION = 'eu-west-1';

let world: World;
let clients: CloudClients;
let delivered: number;

function arn(ref: typeof SET_V4): string {
  return `arn:aws:wafv2:${REGION}:123456789012:regional/ipset/${ref.name}/${ref.id}`;
}

beforeEach(() => {
  world = new World();
  delivered = 0;
  const cloudFormation = new CloudFormationClient({ region: REGION, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const cfn = mockClient(cloudFormation);
  cfn.on(DescribeStacksCommand, { StackName: STACK }).resolves({
    Stacks: [
      {
        StackName: STACK,
        StackStatus: 'UPDATE_COMPLETE',
        CreationTime: new Date(),
        Outputs: [
          { OutputKey: STACK_OUTPUTS.table, OutputValue: world.ddb.tableName },
          { OutputKey: STACK_OUTPUTS.bus, OutputValue: 'portsnare' },
          { OutputKey: STACK_OUTPUTS.ipSets, OutputValue: [arn(SET_V4), arn(SET_V6)].join(',') },
          // the functions' own settings, as the stack publishes them
          { OutputKey: STACK_OUTPUTS.settings, OutputValue: JSON.stringify(world.settings) },
        ],
      },
    ],
  });
  const events = new EventBridgeClient({ region: REGION, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  // The bus: each entry goes to the decide function as EventBridge delivers it, then the enforce
  // function drains its FIFO queue.
  mockClient(events)
    .on(PutEventsCommand)
    .callsFake(async (input: { Entries?: PutEventsRequestEntry[] }) => {
      const results = [];
      for (const entry of input.Entries ?? []) {
        const id = `cli-${++delivered}`;
        await world.decide({
          version: '0',
          id,
          'detail-type': entry.DetailType,
          source: entry.Source,
          account: '123456789012',
          time: new Date(world.clock.now()).toISOString(),
          region: REGION,
          resources: [],
          detail: JSON.parse(entry.Detail ?? '{}') as unknown,
        });
        await world.drain();
        results.push({ EventId: id });
      }
      return { FailedEntryCount: 0, Entries: results };
    });
  // the stack lists no sensors (no PortsnareSensors output): a CloudWatch call would fail on the closed port
  const cloudWatch = new CloudWatchClient({ region: REGION, endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }, maxAttempts: 1 });
  clients = { cloudFormation, dynamo: world.ddb.client, events, waf: () => world.waf.client, ec2: world.ec2.client, cloudWatch };
});

function cli(args: string[]): Promise<CliResult> {
  return runCli([...args, '--stack', STACK, '--region', REGION], { now: () => world.clock.now(), cloud: () => clients });
}

describe('the command line against the pipeline', () => {
  it('block --wait: the decide function records it, the enforce function puts it in WAF and a NACL', async () => {
    const result = await cli(['block', '203.0.113.7', '--ttl', '2h', '--wait', '5']);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^blocked 203\\.0\\.113\\.7 for (2h|1h 59m) \\(until 2026-11-21T12:00:0\\dZ\\), offence 1, enforced in waf:${SET_V4.name}, nacl:${ACL_A}#\\d+`));
    expect(world.wafAddresses()).toContain('203.0.113.7/32');
  });

  it('blocks lists what the pipeline holds; history shows the manual block; unblock --wait lifts it everywhere', async () => {
    await cli(['block', '203.0.113.7', '--reason', 'seen in the ALB logs']);

    const blocks = await cli(['blocks', '--json']);
    const history = await cli(['history', '203.0.113.7']);
    const unblock = await cli(['unblock', '203.0.113.7', '--wait', '5']);
    const after = await cli(['blocks']);

    const [block] = JSON.parse(blocks.stdout) as Array<{ target: string; reason: string; offences: number; expiresInSeconds: number; enforcedIn: string[] }>;
    expect(block).toMatchObject({ target: '203.0.113.7', reason: 'manual', offences: 1 });
    // the enforce function's pacing of WAF updates moved the simulated clock a little
    expect(block?.expiresInSeconds).toBeGreaterThan(3590);
    expect(block?.enforcedIn).toEqual(expect.arrayContaining([`waf:${SET_V4.name}`, expect.stringMatching(new RegExp(`^nacl:${ACL_A}#`))]));
    expect(history.stderr).toBe("");
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/\n2026-11-21T10:00:00Z\s+block\s+reason manual, offence 1/);
    expect(unblock).toEqual({ code: 0, stdout: `unblocked 203.0.113.7 — stack ${STACK} (${REGION})\n`, stderr: '' });
    expect(after.stdout).toBe(`no active blocks (stack ${STACK} (${REGION}))\n`);
    expect(world.wafAddresses()).not.toContain('203.0.113.7/32');
  });

  it('shows a scanner the sensor reported, with reason sensor', async () => {
    await world.decide(world.scanEvent('198.51.100.9'));
    await world.drain();

    const result = await cli(['blocks']);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^198\\.51\\.100\\.9\\s+sensor\\s+1\\s+3\\s+(1h|59m \\d+s)\\s+waf:${SET_V4.name}, nacl:${ACL_A}#\\d+`, 'm'));
  });

  it('refuses the stack\'s allowlisted address before sending anything', async () => {
    const result = await cli(['block', '198.51.100.250']);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe(`portsnare: refused: 198.51.100.250 is protected by allowlist 198.51.100.250/32 (never-block guard from stack ${STACK} settings); nothing was sent\n`);
    expect(delivered).toBe(0);
  });
});
