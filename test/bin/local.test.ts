import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../sensor/local/store';
import { type CliResult, runBin, runCli } from './cli';

let dir: string;
let configPath: string;
let deadPort: number;

/** A port nothing listens on: bound, then closed. */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portsnare-cli-'));
  deadPort = await unusedPort();
  configPath = join(dir, 'agent.yaml');
  await writeFile(
    configPath,
    [
      `stateDirectory: ${join(dir, 'state')}`,
      'guard:',
      '  allowlist: ["198.51.100.0/25"]',
      '  blockableSpecialCidrs: ["198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"]',
      'health:',
      `  port: ${deadPort}`,
      '',
    ].join('\n'),
  );
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** How the commands name the store when no agent answers on the config's health port (they say so). */
function where(): string {
  return `local store ${join(dir, 'state')}; no agent answers at http://127.0.0.1:${deadPort}`;
}

/** The commands on this host with no agent running: the store of the test's config. */
function cli(args: string[]): Promise<CliResult> {
  return runCli([...args, '--config', configPath]);
}

describe('block and blocks on the local store (no agent)', () => {
  it('blocks an address for the given TTL and lists it', async () => {
    const blocked = await cli(['block', '203.0.113.7', '--ttl', '2h', '--reason', 'seen in the web logs']);

    expect(blocked.code).toBe(0);
    expect(blocked.stdout).toMatch(
      new RegExp(`^blocked 203\\.0\\.113\\.7 for (2h|1h 59m) \\(until \\S+Z\\), offence 1, enforced in store only \\(log-only\\) — ${where()}\\n$`),
    );
    const listed = await cli(['blocks']);
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ADDRESS\s+REASON\s+OFFENCES\s+HITS\s+EXPIRES IN\s+ENFORCED IN\s+NOTE$/);
    expect(lines[1]).toMatch(/^203\.0\.113\.7\s+manual\s+1\s+0\s+(2h|1h 59m)\s+store only \(log-only\)\s+requested by portsnare-cli:\S+: seen in the web logs$/);
    expect(lines[2]).toBe(`1 active block (${where()})`);
  });

  it('writes the block to the agent\'s store file, where a restarted agent finds it', async () => {
    await cli(['block', '2001:db8::7']);

    const store = new FileStore(join(dir, 'state'));
    await store.load();
    expect(store.get('2001:db8::7')).toMatchObject({ target: '2001:db8::7', family: 'ipv6', reason: 'manual', active: true, offences: 1 });
    // the policy's base TTL (1h) applies without --ttl
    const record = store.get('2001:db8::7');
    expect((record?.expiresAt ?? 0) - (record?.blockedAt ?? 0)).toBe(3_600_000);
  });

  it('blocks a CIDR', async () => {
    const result = await cli(['block', '203.0.113.0/28', '--ttl', '30m', '--json']);

    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ result: 'blocked', block: { target: '203.0.113.0/28', family: 'ipv4', reason: 'manual', offences: 1, active: true } });
  });

  it('lists blocks as JSON, soonest expiry first', async () => {
    await cli(['block', '203.0.113.9', '--ttl', '3h']);
    await cli(['block', '203.0.113.8', '--ttl', '1h']);

    const result = await cli(['blocks', '--json']);

    expect(result.code).toBe(0);
    const blocks = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(blocks.map((block) => block['target'])).toEqual(['203.0.113.8', '203.0.113.9']);
    expect(blocks[0]).toMatchObject({ reason: 'manual', offences: 1, hitCount: 0, active: true, enforcedIn: ['store only (log-only)'] });
    expect(blocks[0]?.['expiresInSeconds']).toBeGreaterThan(3590);
    expect(blocks[0]?.['expiresInSeconds']).toBeLessThanOrEqual(3600);
  });

  it('says so when nothing is blocked', async () => {
    const result = await cli(['blocks']);

    expect(result).toEqual({ code: 0, stdout: `no active blocks (${where()})\n`, stderr: '' });
  });

  it('refuses an allowlisted address with exit 3 and the rule that protects it', async () => {
    const result = await cli(['block', '198.51.100.7']);

    expect(result.code).toBe(3);
    expect(result.stderr).toBe('portsnare: refused: 198.51.100.7 — never blocked: allowlist 198.51.100.0/25\n');
    expect((await cli(['blocks'])).stdout).toContain('no active blocks');
  });

  it('refuses the host\'s own loopback range (special-purpose) with exit 3', async () => {
    const result = await cli(['block', '127.0.0.1']);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain('special-purpose range loopback 127.0.0.0/8');
  });

  it('exits 2 on an invalid address without touching the store', async () => {
    const result = await cli(['block', '203.0.113.256']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe('portsnare: invalid target "203.0.113.256": not an IPv4 or IPv6 address or CIDR (e.g. 198.51.100.7, 198.51.100.0/24, 2001:db8::1)\n');
  });
});

describe('unblock and history on the local store', () => {
  it('lifts a block, keeps it in the history, and exits 4 the second time', async () => {
    await cli(['block', '203.0.113.7', '--ttl', '2h']);

    const first = await cli(['unblock', '203.0.113.7']);
    const second = await cli(['unblock', '203.0.113.7']);

    expect(first).toEqual({ code: 0, stdout: `unblocked 203.0.113.7 — ${where()}\n`, stderr: '' });
    expect(second.code).toBe(4);
    expect(second.stderr).toBe(`portsnare: 203.0.113.7 is not blocked in ${where()}\n`);
    expect((await cli(['blocks'])).stdout).toContain('no active blocks');
  });

  it('shows the current state and every step of the history', async () => {
    await cli(['block', '203.0.113.7', '--ttl', '2h']);
    await cli(['unblock', '203.0.113.7']);
    await cli(['block', '203.0.113.7', '--ttl', '1h']);

    const result = await cli(['history', '203.0.113.7']);

    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^203\.0\.113\.7: blocked for (1h|59m \d+s) more \(until \S+\); reason manual, offence 2, 0 hits, first seen \S+ — local store /);
    expect(lines[1]).toMatch(/^TIME\s+ACTION\s+DETAIL$/);
    expect(lines.slice(2).map((line) => line.split(/\s+/)[1])).toEqual(['block', 'unblock', 'block']);
    expect(lines[3]).toMatch(/unblock\s+reason manual, offence 1, 0 hits, requested by .*, lifted by portsnare-cli:/);
  });

  it('prints the history as JSON', async () => {
    await cli(['block', '203.0.113.7']);

    const result = await cli(['history', '203.0.113.7', '--json']);

    expect(result.code).toBe(0);
    const body = JSON.parse(result.stdout) as { target: string; current: Record<string, unknown>; entries: Array<Record<string, unknown>> };
    expect(body.target).toBe('203.0.113.7');
    expect(body.current).toMatchObject({ target: '203.0.113.7', active: true, offences: 1 });
    expect(body.entries).toHaveLength(1);
    expect(body.entries[0]).toMatchObject({ action: 'block' });
  });

  it('exits 4 for an address never seen', async () => {
    const result = await cli(['history', '203.0.113.99']);

    expect(result.code).toBe(4);
    expect(result.stderr).toBe(`portsnare: no history for 203.0.113.99 (${where()})\n`);
  });
});

describe('status on the local store', () => {
  it('says the agent is not running, where the store is, and exits 6', async () => {
    await cli(['block', '203.0.113.7']);

    const result = await cli(['status']);

    expect(result.code).toBe(6);
    expect(result.stdout).toContain(`portsnare status — ${where()}`);
    expect(result.stdout).toMatch(new RegExp(`agent\\s+not running \\(nothing answers on http://127\\.0\\.0\\.1:${deadPort}\\)`));
    expect(result.stdout).toMatch(/enforcement\s+log-only \(enforce\.nftables\.enabled is false\)/);
    expect(result.stdout).toMatch(/active blocks\s+1\n/);
    expect(result.stdout).toMatch(/spool depth\s+no spool/);
  });

  it('with --state-dir reads only the store, says the agent was not asked, and exits 0', async () => {
    const result = await runCli(['status', '--state-dir', join(dir, 'state')]);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/agent\s+not asked \(--state-dir given\)/);
  });

  it('counts the events waiting in the spool after its cursor', async () => {
    const spool = join(dir, 'state', 'spool');
    await mkdir(spool, { recursive: true });
    const line = (n: number): string => `${JSON.stringify({ id: `e${n}`, spooledAt: 0, event: {} })}\n`;
    await writeFile(join(spool, '000000000001.jsonl'), line(1) + line(2) + line(3));
    await writeFile(join(spool, '000000000002.jsonl'), line(4));
    await writeFile(join(spool, 'cursor.json'), JSON.stringify({ segment: 1, offset: Buffer.byteLength(line(1)) }));

    const result = await cli(['status', '--json']);

    expect(result.code).toBe(6);
    expect(JSON.parse(result.stdout)).toMatchObject({ healthy: false, backend: 'store', agent: { running: false }, activeBlocks: 0, spool: { events: 3, directory: spool } });
  });

  it('exits 2 with the key at fault when the config is invalid', async () => {
    await writeFile(configPath, 'tcpPorts: "70000"\n');

    const result = await cli(['status']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('tcpPorts: "70000" is not a port (1-65535)');
  });

  it('exits 6 when --agent names an agent that does not answer', async () => {
    const result = await runCli(['blocks', '--agent', `http://127.0.0.1:${deadPort}`]);

    expect(result.code).toBe(6);
    expect(result.stderr).toBe(`portsnare: no agent answers at http://127.0.0.1:${deadPort} (is \`portsnare agent\` running? is the health port right?)\n`);
  });
});

describe('bin/portsnare.js as a child process', () => {
  it('blocks, lists and unblocks through the real entry point', async () => {
    const block = await runBin(['block', '203.0.113.7', '--ttl', '10m', '--config', configPath]);
    const blocks = await runBin(['blocks', '--json', '--config', configPath]);
    const unblock = await runBin(['unblock', '203.0.113.7', '--config', configPath]);

    expect(block.code).toBe(0);
    expect(block.stdout).toMatch(/^blocked 203\.0\.113\.7 for (10m|9m \d+s)/);
    expect(blocks.code).toBe(0);
    expect((JSON.parse(blocks.stdout) as Array<{ target: string }>).map((b) => b.target)).toEqual(['203.0.113.7']);
    expect(unblock.code).toBe(0);
  });

  it('prints help for every command and exits 0', async () => {
    for (const command of ['status', 'blocks', 'block', 'unblock', 'history']) {
      const result = await runBin([command, '--help']);
      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toMatch(new RegExp(`^Usage: portsnare ${command} \\[options\\]`));
      expect(result.stdout, command).toContain('--stack <name>');
    }
  });

  it('exits 2 and shows the usage when an argument is missing', async () => {
    const result = await runBin(['block']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("error: missing required argument 'target'");
  });
});

describe('read-only commands and what they say', () => {
  it('status, blocks and history create no state directory, and say that no agent answered', async () => {
    const missing = join(dir, 'never', 'made');
    await writeFile(configPath, [`stateDirectory: ${missing}`, 'health:', `  port: ${deadPort}`, ''].join('\n'));

    const blocks = await cli(['blocks']);
    const history = await cli(['history', '203.0.113.7']);
    const status = await cli(['status']);
    const direct = await runCli(['blocks', '--state-dir', join(missing, 'direct')]);

    expect(blocks).toEqual({ code: 0, stdout: `no active blocks (local store ${missing}; no agent answers at http://127.0.0.1:${deadPort})\n`, stderr: '' });
    expect(history.code).toBe(4);
    expect(status.code).toBe(6);
    expect(direct.code).toBe(0);
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('history --json and blocks --json agree on where a block is enforced', async () => {
    expect((await cli(['block', '203.0.113.7'])).code).toBe(0);

    const blocks = JSON.parse((await cli(['blocks', '--json'])).stdout) as Array<{ enforcedIn: string[] }>;
    const history = JSON.parse((await cli(['history', '203.0.113.7', '--json'])).stdout) as { current: { enforcedIn: string[] } };

    expect(blocks[0]?.enforcedIn).toEqual(['store only (log-only)']);
    expect(history.current.enforcedIn).toEqual(blocks[0]?.enforcedIn);
  });
});

describe('manual re-blocks and the policy\'s limits', () => {
  it('a re-block keeps the longer block and its note; --replace shortens it', async () => {
    await cli(['block', '203.0.113.7', '--ttl', '7d', '--reason', 'known bad']);
    await cli(['block', '203.0.113.7', '--ttl', '1h']);
    const kept = JSON.parse((await cli(['blocks', '--json'])).stdout) as Array<{ expiresInSeconds: number; note?: string }>;

    const replaced = await cli(['block', '203.0.113.7', '--ttl', '1h', '--replace']);
    const after = JSON.parse((await cli(['blocks', '--json'])).stdout) as Array<{ expiresInSeconds: number; note?: string }>;

    expect(kept[0]?.expiresInSeconds).toBeGreaterThan(6 * 86400);
    expect(kept[0]?.note).toContain('known bad');
    expect(replaced.code).toBe(0);
    expect(after[0]?.expiresInSeconds).toBeLessThanOrEqual(3600);
  });

  it('refuses a TTL over policy.maxManualTtlSeconds and a CIDR wider than policy.widestIpv4Prefix (exit 3)', async () => {
    await writeFile(
      configPath,
      [
        `stateDirectory: ${join(dir, 'state')}`,
        'enforce: { nftables: { policy: { maxManualTtlSeconds: 86400, widestIpv4Prefix: 28 } } }',
        'guard: { blockableSpecialCidrs: ["203.0.113.0/24"] }',
        `health: { port: ${deadPort} }`,
        '',
      ].join('\n'),
    );

    const long = await cli(['block', '203.0.113.7', '--ttl', '2d']);
    const wide = await cli(['block', '203.0.113.0/27']);

    expect(long.code).toBe(3);
    expect(long.stderr).toContain('policy.maxManualTtlSeconds');
    expect(wide.code).toBe(3);
    expect(wide.stderr).toContain('policy.widestIpv4Prefix');
    expect((await cli(['blocks'])).stdout).toContain('no active blocks');
  });
});

describe('unblock --all', () => {
  it('refuses without a terminal and without --yes; --yes lifts every block', async () => {
    await cli(['block', '203.0.113.7']);
    await cli(['block', '203.0.113.64/26']);

    const refused = await runCli(['unblock', '--all', '--config', configPath], { isTty: () => false });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --yes');
    expect((await cli(['blocks', '--json'])).stdout).toContain('203.0.113.7');

    const done = await runCli(['unblock', '--all', '--yes', '--config', configPath], { isTty: () => false });
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^unblocked 2 blocks: (203\.0\.113\.7, 203\.0\.113\.64\/26|203\.0\.113\.64\/26, 203\.0\.113\.7) — /);
    expect((await cli(['blocks'])).stdout).toContain('no active blocks');
  });

  it('asks on a terminal and lifts nothing unless the answer is yes', async () => {
    await cli(['block', '203.0.113.7']);
    const questions: string[] = [];

    const no = await runCli(['unblock', '--all', '--config', configPath], { isTty: () => true, confirm: (q) => (questions.push(q), Promise.resolve(false)) });
    const yes = await runCli(['unblock', '--all', '--config', configPath], { isTty: () => true, confirm: () => Promise.resolve(true) });

    expect(questions[0]).toMatch(/^lift all 1 active block \(local store /);
    expect(no.code).toBe(1);
    expect(yes.code).toBe(0);
    expect((await cli(['blocks'])).stdout).toContain('no active blocks');
  });
});

describe('allow (no agent running)', () => {
  it('add writes the runtime allowlist, lifts the covered block and refuses new ones; remove and list', async () => {
    await cli(['block', '203.0.113.7']);

    const added = await cli(['allow', 'add', '203.0.113.0/28']);
    const refused = await cli(['block', '203.0.113.9']);
    const listed = await cli(['allow', 'list']);
    const hostBits = await cli(['allow', 'add', '203.0.113.7/28']);

    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^allowed 203\.0\.113\.0\/28; unblocked 203\.0\.113\.7 — .*allowlist\.json; no agent answers at /);
    expect((await cli(['blocks'])).stdout).toContain('no active blocks');
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('203.0.113.0/28');
    expect(listed.stdout).toMatch(/^ADDRESS\s+ADDED\s+BY\n203\.0\.113\.0\/28\s+\S+Z\s+\S+/);
    expect(hostBits.code).toBe(2);
    expect(hostBits.stderr).toContain('did you mean 203.0.113.0/28?');

    expect((await cli(['allow', 'remove', '203.0.113.0/28'])).code).toBe(0);
    expect((await cli(['allow', 'remove', '203.0.113.0/28'])).code).toBe(4);
    expect((await cli(['block', '203.0.113.9'])).code).toBe(0);
  });
});

