/**
 * The nftables enforcement point: what it adds, removes and leaves alone, against literal
 * expectations, through the same runPoint the cloud's points run through. The kernel side of
 * NftEnforcer (real nft in a namespace) is proven in test/lab/enforce.test.ts, whose restart case
 * runs this point on restore.
 */
import { describe, expect, it } from 'vitest';
import { runPoint } from '../../../core/points';
import type { KernelBlock } from '../../../sensor/local/nft';
import { NftPoint, planNft } from '../../../sensor/local/nft-point';

const NOW = 1_800_000_000_000;
const rec = (target: string, active: boolean, expiresAt: number) => ({ target, active, expiresAt, lastSeen: NOW - 1000, blockedAt: NOW - 5000 });

class MemoryEnforcer {
  elements = new Map<string, number>();
  calls: string[] = [];
  failBlock = false;
  async ensure(): Promise<void> {
    this.calls.push('ensure');
  }
  async block(target: string, expiresAt: number): Promise<void> {
    await this.blockMany([{ target, expiresAt }]);
  }
  async blockMany(entries: ReadonlyArray<{ target: string; expiresAt: number }>): Promise<void> {
    if (this.failBlock) throw new Error('nft: Operation not permitted');
    this.calls.push(`add ${entries.map((e) => e.target).join(',')}`);
    for (const e of entries) this.elements.set(e.target, e.expiresAt);
  }
  async unblock(target: string): Promise<void> {
    this.calls.push(`del ${target}`);
    this.elements.delete(target);
  }
  async list(): Promise<KernelBlock[]> {
    return [...this.elements].map(([target, expiresAt]) => ({ target, expiresAt }));
  }
}

describe('planNft', () => {
  const actual: KernelBlock[] = [
    { target: '192.0.2.1', expiresAt: NOW + 60_000 },
    { target: '192.0.2.2', expiresAt: NOW + 60_000 },
    { target: '192.0.2.3', expiresAt: NOW + 600_000 },
    { target: '198.51.100.9', expiresAt: NOW + 3_600_000 },
  ];

  it('adds the missing, re-adds a drifted timeout, removes only our element of a lifted record, leaves unknown elements', () => {
    const plan = planNft(
      {
        kind: 'full',
        records: [
          rec('192.0.2.1', true, NOW + 60_500), // present, within the slack: untouched
          rec('192.0.2.2', true, NOW + 120_000), // extended: added again with the new expiry
          rec('192.0.2.3', false, NOW + 600_000), // lifted early: our element goes
          rec('203.0.113.4', true, NOW + 30_000), // missing: added
          rec('203.0.113.5', false, NOW + 30_000), // lifted and absent: nothing
        ],
      },
      actual,
      NOW,
    );
    expect(plan.add).toEqual([
      { target: '192.0.2.2', expiresAt: NOW + 120_000 },
      { target: '203.0.113.4', expiresAt: NOW + 30_000 },
    ]);
    expect(plan.remove).toEqual(['192.0.2.3']);
  });

  it('leaves a lifted source the kernel blocked again (another timeout): its event has not reached the store yet', () => {
    const plan = planNft({ kind: 'full', records: [rec('192.0.2.3', false, NOW - 1_000)] }, actual, NOW);
    expect(plan.remove).toEqual([]);
  });

  it('plans changes from the latest change of each target, whatever their order', () => {
    const plan = planNft(
      {
        kind: 'changes',
        changes: [
          { ...rec('203.0.113.4', true, NOW + 30_000), changedAt: NOW - 3000 },
          { ...rec('203.0.113.4', false, NOW + 30_000), changedAt: NOW - 1000 },
          { ...rec('203.0.113.6', false, NOW + 30_000), changedAt: NOW - 2000 },
          { ...rec('203.0.113.6', true, NOW + 90_000), changedAt: NOW - 500 },
        ],
      },
      [],
      NOW,
    );
    expect(plan.add).toEqual([{ target: '203.0.113.6', expiresAt: NOW + 90_000 }]);
    expect(plan.remove).toEqual([]);
  });

  it('an expired record is not added back, even if still marked active', () => {
    expect(planNft({ kind: 'full', records: [rec('203.0.113.7', true, NOW)] }, [], NOW).add).toEqual([]);
  });
});

describe('NftPoint through runPoint', () => {
  const failureOf = (point: string, error: unknown) => ({ point, error: 'Error', message: String(error), transient: true });

  it('applies the plan in one transaction and reports before and after', async () => {
    const nft = new MemoryEnforcer();
    nft.elements.set('192.0.2.3', NOW + 600_000);
    const report = await runPoint(new NftPoint(nft), { kind: 'full', records: [rec('192.0.2.3', false, NOW + 600_000), rec('203.0.113.4', true, NOW + 30_000)] }, () => NOW, 1, failureOf);
    expect(nft.calls).toEqual(['ensure', 'add 203.0.113.4', 'del 192.0.2.3']);
    expect(report).toMatchObject({ point: 'nft:inet portsnare', applied: 2, failures: [], passes: 1 });
    expect([...report.before]).toEqual(['192.0.2.3']);
    expect([...report.after]).toEqual(['203.0.113.4']);
  });

  it('a failing nft is the point\'s failure, and the removals are still tried', async () => {
    const nft = new MemoryEnforcer();
    nft.failBlock = true;
    nft.elements.set('192.0.2.3', NOW + 600_000);
    const report = await runPoint(new NftPoint(nft), { kind: 'full', records: [rec('192.0.2.3', false, NOW + 600_000), rec('203.0.113.4', true, NOW + 30_000)] }, () => NOW, 1, failureOf);
    expect(report.failures).toEqual([{ point: 'nft:inet portsnare', error: 'Error', message: 'nft: Operation not permitted', transient: true }]);
    expect(nft.calls).toEqual(['ensure', 'del 192.0.2.3']);
    expect([...report.after]).toEqual([]);
  });
});
