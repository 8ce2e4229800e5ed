/**
 * `portsnare findings --stack`: the blocks as OCSF Detection Findings (default) or ASFF, one JSON
 * object per line, from a fake account (fake-stack.ts) seeded through the pipeline's repository.
 * Expectations are literal (class 2004 / ASFF required attributes: core/ocsf.ts, core/findings.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BlockRecord, lift } from '../../core/policy';
import { type CliResult, runCli } from './cli';
import { FakeAccount } from './fake-stack';

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

function cli(args: string[]): Promise<CliResult> {
  return runCli([...args, '--stack', STACK, '--region', 'eu-west-1'], { now: () => NOW });
}

beforeEach(() => {
  aws = new FakeAccount();
  ({ table } = aws.addPortsnareStack(STACK));
});

afterEach(() => aws.restore());

function lines(result: CliResult): Array<Record<string, unknown>> {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('findings --stack', () => {
  it('prints the active blocks as OCSF Detection Findings by default', async () => {
    await aws.repository(table).save(record('203.0.113.9', { offences: 2 }), undefined, NOW - 60_000);
    const [finding, ...rest] = lines(await cli(['findings']));
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      activity_id: 2,
      type_uid: 200402,
      severity_id: 3,
      time: NOW - 60_000,
      finding_info: { uid: `portsnare/${table}/block/203.0.113.9` },
      cloud: { provider: 'AWS', region: 'eu-west-1', account: { uid: '111122223333' } },
      src_endpoint: { ip: '203.0.113.9' },
    });
  });

  it('prints every block changed since --since as ASFF, the lifted one archived', async () => {
    const repo = aws.repository(table);
    await repo.save(record('203.0.113.9'), undefined, NOW - 60_000);
    await repo.save(record('198.51.100.20'), undefined, NOW - 120_000);
    const stored = (await repo.get('198.51.100.20'))!;
    await repo.save(lift(stored.record, 'manual unblock'), stored.version, NOW - 30_000);
    await repo.save(record('192.0.2.1', { blockedAt: NOW - 7_200_000, lastSeen: NOW - 7_200_000 }), undefined, NOW - 7_200_000);
    const found = lines(await cli(['findings', '--asff', '--since', '10m']));
    expect(found.map((f) => [f.Id, f.RecordState, f.UpdatedAt])).toEqual([
      [`portsnare/${table}/block/203.0.113.9`, 'ACTIVE', '2026-11-21T11:59:00.000Z'],
      [`portsnare/${table}/block/198.51.100.20`, 'ARCHIVED', '2026-11-21T11:59:30.000Z'],
    ]);
    expect(found[0]).toMatchObject({ ProductArn: 'arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default', AwsAccountId: '111122223333', SchemaVersion: '2018-10-08' });
  });

  it('refuses without --stack, with both formats, or further back than a day', async () => {
    expect((await runCli(['findings'], { now: () => NOW })).code).not.toBe(0);
    expect((await cli(['findings', '--asff', '--ocsf'])).stderr).toMatch(/exclude each other/);
    expect((await cli(['findings', '--since', '2d'])).stderr).toMatch(/a day at most/);
  });
});
