/**
 * core/org.ts: the plane id and the health `portsnare status --org` shows for each plane, from
 * that plane's own report. The expected values are computed by hand from the documented rule
 * (silent after two reconcile periods without a report, lagging from the last converged run),
 * not by calling the code twice.
 */
import { describe, expect, it } from 'vitest';
import { planeSilentAfterMs, type PlaneReport, PlaneReportSchema, planeId, planeReportKey, planeStatus } from '../../core/org';

const T0 = Date.parse('2026-11-29T12:00:00.000Z');
const MIN = 60_000;

function report(overrides: Partial<PlaneReport> = {}): PlaneReport {
  return PlaneReportSchema.parse({ planeId: '111111111111/eu-west-1', lastRunAt: T0, lastConvergedAt: T0, converged: true, desired: 3, failures: [], mode: 'reconcile', ...overrides });
}

describe('planeId', () => {
  it('is "<account>/<region>" for a 12-digit account and an AWS Region', () => {
    expect(planeId('111111111111', 'eu-west-1')).toBe('111111111111/eu-west-1');
    expect(planeId('222222222222', 'us-east-1')).toBe('222222222222/us-east-1');
    expect(planeId('333333333333', 'ap-southeast-2')).toBe('333333333333/ap-southeast-2');
    expect(planeId('333333333333', 'us-gov-west-1')).toBe('333333333333/us-gov-west-1');
  });

  it('refuses an account id that is not 12 digits, naming the value', () => {
    expect(() => planeId('11111111111', 'eu-west-1')).toThrow('not an AWS account id: "11111111111"');
    expect(() => planeId('1111111111112', 'eu-west-1')).toThrow(/not an AWS account id/);
    expect(() => planeId('11111111111a', 'eu-west-1')).toThrow(/"11111111111a"/);
    expect(() => planeId('', 'eu-west-1')).toThrow(/not an AWS account id: ""/);
  });

  it('refuses a Region that is not shaped like one, naming the value', () => {
    expect(() => planeId('111111111111', 'eu-west')).toThrow('not an AWS Region: "eu-west"');
    expect(() => planeId('111111111111', 'EU-WEST-1')).toThrow(/not an AWS Region: "EU-WEST-1"/);
    expect(() => planeId('111111111111', 'eu-west-1a')).toThrow(/not an AWS Region/); // an Availability Zone
    expect(() => planeId('111111111111', 'eu-west-1/x')).toThrow(/not an AWS Region/);
  });

  it('keys the report under PLANE#<id>', () => {
    expect(planeReportKey('111111111111/eu-west-1')).toEqual({ pk: 'PLANE#111111111111/eu-west-1', sk: 'REPORT' });
  });

  it('the report schema takes only a well-formed plane id and at most 10 failures', () => {
    expect(PlaneReportSchema.safeParse({ ...report(), planeId: '111111111111-eu-west-1' }).success).toBe(false);
    expect(PlaneReportSchema.safeParse({ ...report(), failures: Array.from({ length: 11 }, (_, i) => `nacl:acl-${i}`) }).success).toBe(false);
    expect(PlaneReportSchema.safeParse({ ...report(), extra: 1 }).success).toBe(false);
  });
});

describe('planeStatus', () => {
  it('a plane whose last run converged a minute ago is healthy, with no lag', () => {
    const status = planeStatus(report({ lastRunAt: T0, lastConvergedAt: T0 }), T0 + 1 * MIN);
    expect(status).toMatchObject({ planeId: '111111111111/eu-west-1', health: 'healthy', lagMs: 0, silentMs: 60_000 });
  });

  it('silent after two reconcile periods without a report (20 minutes at the default 10), not before; another period moves it', () => {
    expect(planeSilentAfterMs()).toBe(1_200_000);
    expect(planeStatus(report(), T0 + 20 * MIN).health).toBe('healthy'); // exactly 20 min: not yet
    expect(planeStatus(report(), T0 + 11 * MIN).health).toBe('healthy'); // a quiet plane reports once a 10-minute reconcile
    expect(planeStatus(report(), T0 + 11 * MIN, 5).health).toBe('silent');
    expect(planeStatus(report(), T0 + 59 * MIN, 30).health).toBe('healthy');
    const late = planeStatus(report(), T0 + 20 * MIN + 1);
    expect(late.health).toBe('silent');
    expect(late.silentMs).toBe(1_200_001);
    expect(late.lagMs).toBe(0); // its last run converged: silence is not lag
  });

  it('silent wins over lagging', () => {
    const status = planeStatus(report({ converged: false, lastRunAt: T0, lastConvergedAt: T0 - 30 * MIN }), T0 + 21 * MIN);
    expect(status.health).toBe('silent');
    expect(status.lagMs).toBe(51 * MIN); // behind since its last converged run
  });

  it('lagging since lastConvergedAt when the last run did not converge', () => {
    // converged at 11:40, then failed runs; the last at 12:00; read at 12:03
    const status = planeStatus(report({ converged: false, lastRunAt: T0, lastConvergedAt: T0 - 20 * MIN, failures: ['nacl:acl-0a1b2c3d4e5f60001'] }), T0 + 3 * MIN);
    expect(status).toMatchObject({ health: 'lagging', lagMs: 23 * MIN, silentMs: 3 * MIN });
  });

  it('lagging from its first report when it never converged', () => {
    const status = planeStatus(report({ converged: false, lastRunAt: T0, lastConvergedAt: undefined }), T0 + 2 * MIN);
    expect(status).toMatchObject({ health: 'lagging', lagMs: 2 * MIN, silentMs: 2 * MIN });
  });

  it('a report from the future (clock skew between accounts) counts as just now', () => {
    const status = planeStatus(report({ converged: false, lastRunAt: T0 + 30_000, lastConvergedAt: T0 + 60_000 }), T0);
    expect(status).toMatchObject({ health: 'lagging', lagMs: 0, silentMs: 0 });
  });
});
