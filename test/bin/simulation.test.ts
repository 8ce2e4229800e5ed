/**
 * `portsnare blocks --simulated` and the SIMULATED mark (issue 21 item 1), on the local store
 * (enforce.nftables.simulate in the agent config) and a stack (the `simulation` of its
 * PortsnareSettings output) against the fake account (fake-stack.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlockRecord } from '../../core/policy';
import { FileStore } from '../../sensor/local/store';
import { runCli } from './cli';
import { FakeAccount } from './fake-stack';

const NOW = Date.parse('2026-11-21T12:00:00Z');

function record(target: string, reason: BlockRecord['reason'], at = NOW): BlockRecord {
  return { target, family: target.includes(':') ? 'ipv6' : 'ipv4', reason, firstSeen: at - 60_000, lastSeen: at - 60_000, hitCount: 3, offences: 1, blockedAt: at - 60_000, expiresAt: at + 3_600_000, active: true, eventIds: ['e1'], sensors: ['host-1'] };
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('the local store with enforce.nftables.simulate', () => {
  let dir: string;
  let configPath: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portsnare-cli-sim-'));
    configPath = join(dir, 'agent.yaml');
    await writeFile(
      configPath,
      [
        `stateDirectory: ${join(dir, 'state')}`,
        'guard:',
        '  blockableSpecialCidrs: ["198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]',
        'enforce:',
        '  nftables:',
        '    simulate: { inputs: [sensor] }',
        'health:',
        `  port: ${await unusedPort()}`,
        '',
      ].join('\n'),
    );
    // a sensor block the agent decided (simulated), written to its store
    const store = new FileStore(join(dir, 'state'));
    await store.load();
    await store.transaction(() => store.put(record('203.0.113.9', 'sensor', Date.now()), 'block'));
    await store.close();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (args: string[]) => runCli([...args, '--config', configPath]);

  it('blocks marks the simulated block SIMULATED where it says where a block is enforced; --simulated lists only it', async () => {
    expect((await cli(['block', '203.0.113.7', '--ttl', '2h'])).code).toBe(0); // manual: enforced (log-only here)
    const listed = await cli(['blocks']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^203\.0\.113\.9\s+sensor\s+1\s+3\s+\S+\s+SIMULATED\s/m);
    expect(listed.stdout).toMatch(/^203\.0\.113\.7\s+manual\s+1\s+0\s+\S+( \S+)?\s+store only \(log-only\)\s/m);
    expect(listed.stdout).toMatch(/^2 active blocks \(/m);

    const simulated = await cli(['blocks', '--simulated']);
    expect(simulated.code).toBe(0);
    expect(simulated.stdout).toMatch(/^203\.0\.113\.9\s+sensor/m);
    expect(simulated.stdout).not.toMatch(/203\.0\.113\.7/);
    expect(simulated.stdout).toMatch(/^1 active simulated block \(/m);

    const json = JSON.parse((await cli(['blocks', '--simulated', '--json'])).stdout) as Array<{ target: string; simulated: boolean; enforcedIn: string[] }>;
    expect(json.map((b) => [b.target, b.simulated, b.enforcedIn])).toEqual([['203.0.113.9', true, []]]);
  });

  it('a manual block in simulation says so when it is made', async () => {
    const text = [`stateDirectory: ${join(dir, 'state')}`, 'guard:', '  blockableSpecialCidrs: ["203.0.113.0/24"]', 'enforce:', '  nftables:', '    simulate: true', 'health:', `  port: ${await unusedPort()}`, ''].join('\n');
    await writeFile(configPath, text);
    const blocked = await cli(['block', '203.0.113.8']);
    expect(blocked.code).toBe(0);
    expect(blocked.stdout).toMatch(/^blocked 203\.0\.113\.8 for .*, enforced in SIMULATED — /);
    const none = await cli(['blocks', '--simulated', '--contains', '203.0.113.7']);
    expect(none.stdout).toMatch(/^no active simulated block holds 203\.0\.113\.7 \(/);
  });
});

describe('a stack with simulation', () => {
  const STACK = 'portsnare-sim';
  let aws: FakeAccount;
  let table: string;
  afterEach(() => aws.restore());

  async function save(block: BlockRecord): Promise<void> {
    const repository = aws.repository(table);
    const stored = await repository.get(block.target);
    if (!(await repository.save(block, stored?.version, NOW))) throw new Error(`the repository refused to save ${block.target}`);
  }
  const cli = (args: string[]) => runCli([...args, '--stack', STACK, '--region', 'eu-west-1'], { now: () => NOW });

  it('inputs: the simulated block is SIMULATED and in no set (not "pending"); --simulated lists only it', async () => {
    aws = new FakeAccount();
    ({ table } = aws.addPortsnareStack(STACK, { settings: { guard: { blockableSpecialCidrs: ['203.0.113.0/24'] }, simulation: { all: false, inputs: ['guardduty'] } } }));
    await save(record('203.0.113.9', 'guardduty'));
    await save(record('203.0.113.10', 'sensor'));
    aws.ipSets.set(`${STACK}-v4`, ['203.0.113.10/32']);

    const listed = await cli(['blocks']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^203\.0\.113\.9\s+guardduty\s+.*\sSIMULATED\s/m);
    expect(listed.stdout).toMatch(/^203\.0\.113\.10\s+sensor\s+.*\swaf:portsnare-sim-v4\s/m);
    expect(listed.stdout).not.toMatch(/pending/);

    const json = JSON.parse((await cli(['blocks', '--simulated', '--json'])).stdout) as Array<{ target: string; simulated: boolean; enforcedIn: string[] }>;
    expect(json.map((b) => [b.target, b.simulated, b.enforcedIn])).toEqual([['203.0.113.9', true, []]]);
  });

  it('all: every block is SIMULATED, in the set whose rule counts', async () => {
    aws = new FakeAccount();
    ({ table } = aws.addPortsnareStack(STACK, { settings: { guard: { blockableSpecialCidrs: ['203.0.113.0/24'] }, simulation: { all: true, inputs: [] } } }));
    await save(record('203.0.113.10', 'sensor'));
    aws.ipSets.set(`${STACK}-v4`, ['203.0.113.10/32']);
    const listed = await cli(['blocks', '--simulated']);
    expect(listed.stdout).toMatch(/^203\.0\.113\.10\s+sensor\s+.*\sSIMULATED \(in waf:portsnare-sim-v4\)/m);
    expect(listed.stdout).toMatch(/^1 active simulated block \(/m);
  });

  it('a stack deployed before simulation (no simulation in its settings) has no simulated block', async () => {
    aws = new FakeAccount();
    ({ table } = aws.addPortsnareStack(STACK, { settings: { guard: { blockableSpecialCidrs: ['203.0.113.0/24'] } } }));
    await save(record('203.0.113.10', 'sensor'));
    const listed = await cli(['blocks', '--simulated']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^no active simulated blocks \(/);
  });
});
