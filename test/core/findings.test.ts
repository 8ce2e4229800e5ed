/**
 * core/findings.ts (ASFF) and core/ocsf.ts (OCSF Detection Finding) against literal
 * expectations written from the AWS and OCSF pages those files cite.
 */
import { describe, expect, it } from 'vitest';
import { asffFinding, batches, findingId, parseProductArn, productArnOf, severityOf } from '../../core/findings';
import { ocsfDetectionFinding } from '../../core/ocsf';
import type { BlockRecord } from '../../core/policy';

/** 2026-11-29T12:00:00.000Z */
const NOW = 1795953600000;
const TARGET = { partition: 'aws', region: 'eu-west-1', account: '123456789012', scope: 'Portsnare-Table1' };

function record(overrides: Partial<BlockRecord> = {}): BlockRecord {
  return {
    target: '203.0.113.7',
    family: 'ipv4',
    reason: 'sensor',
    firstSeen: NOW - 60_000,
    lastSeen: NOW,
    hitCount: 12,
    offences: 1,
    blockedAt: NOW,
    expiresAt: NOW + 3_600_000,
    active: true,
    eventIds: ['e1'],
    sensors: ['ec2-sensor'],
    ...overrides,
  };
}

describe('ASFF finding of a block record', () => {
  it('has every required attribute, the default product ARN and the change time as UpdatedAt', () => {
    const f = asffFinding(record(), NOW + 5, TARGET);
    expect(f.SchemaVersion).toBe('2018-10-08');
    expect(f.ProductArn).toBe('arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default');
    expect(f.AwsAccountId).toBe('123456789012');
    expect(f.Id).toBe('portsnare/Portsnare-Table1/block/203.0.113.7');
    expect(f.GeneratorId).toBe('portsnare/decision');
    expect(f.Types).toEqual(['TTPs/Discovery/Recon:PortScan']);
    expect(f.CreatedAt).toBe('2026-11-29T11:59:00.000Z');
    expect(f.UpdatedAt).toBe('2026-11-29T12:00:00.005Z');
    expect(f.Severity).toEqual({ Label: 'LOW', Original: 'offences 1' });
    expect(f.FindingProviderFields).toEqual({ Severity: { Label: 'LOW', Original: 'offences 1' }, Types: ['TTPs/Discovery/Recon:PortScan'] });
    expect(f.RecordState).toBe('ACTIVE');
    expect(f.Title).toBe('portsnare blocked 203.0.113.7: port scan');
    expect(f.Network).toEqual({ Direction: 'IN', SourceIpV4: '203.0.113.7' });
    expect(f.Resources).toEqual([{ Type: 'Other', Id: '203.0.113.7', Partition: 'aws', Region: 'eu-west-1', Details: { Other: { target: '203.0.113.7', family: 'ipv4', reason: 'sensor' } } }]);
    expect(f.ProductFields['portsnare/offences']).toBe('1');
    expect(f.ProductFields['portsnare/hitCount']).toBe('12');
  });

  it('raises the severity with the offences and archives a lifted block under the same Id', () => {
    expect([1, 2, 3, 4, 9].map(severityOf)).toEqual(['LOW', 'MEDIUM', 'MEDIUM', 'HIGH', 'HIGH']);
    const lifted = asffFinding(record({ offences: 4, active: false, liftedBy: 'expiry' }), NOW + 10, TARGET);
    expect(lifted.RecordState).toBe('ARCHIVED');
    expect(lifted.Severity.Label).toBe('HIGH');
    expect(lifted.FindingProviderFields.Severity.Label).toBe('HIGH');
    expect(lifted.Id).toBe(findingId('Portsnare-Table1', '203.0.113.7'));
    expect(lifted.ProductFields['portsnare/liftedBy']).toBe('expiry');
  });

  it('gives an IPv6 prefix block no source address, and an IPv6 host its own', () => {
    expect(asffFinding(record({ target: '2001:db8:1:2::/64', family: 'ipv6' }), NOW, TARGET).Network).toBeUndefined();
    expect(asffFinding(record({ target: '2001:db8::7', family: 'ipv6' }), NOW, TARGET).Network).toEqual({ Direction: 'IN', SourceIpV6: '2001:db8::7' });
  });

  it('keeps Title and Description within 256 and 1024 characters', () => {
    const f = asffFinding(record({ note: 'x'.repeat(5000) }), NOW, TARGET);
    expect(f.Description.length).toBe(1024);
    expect(f.Title.length).toBeLessThanOrEqual(256);
  });

  it('parses only a default product ARN of one account', () => {
    expect(productArnOf({ partition: 'aws-us-gov', region: 'us-gov-west-1', account: '111122223333' })).toBe('arn:aws-us-gov:securityhub:us-gov-west-1:111122223333:product/111122223333/default');
    expect(parseProductArn('arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default')).toEqual({ partition: 'aws', region: 'eu-west-1', account: '123456789012' });
    expect(parseProductArn('arn:aws:securityhub:eu-west-1:123456789012:product/999999999999/default')).toBeUndefined();
    expect(parseProductArn('arn:aws:securityhub:eu-west-1::product/aws/guardduty')).toBeUndefined();
  });

  it('cuts 250 findings into calls of 100, 100 and 50', () => {
    expect(batches(Array.from({ length: 250 }, (_, i) => i)).map((b) => b.length)).toEqual([100, 100, 50]);
  });
});

describe('OCSF Detection Finding of a block record', () => {
  it('is class 2004 of category 2 with its required attributes; a first block creates', () => {
    const f = ocsfDetectionFinding(record(), NOW, TARGET);
    expect(f).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      activity_id: 1,
      type_uid: 200401,
      time: NOW,
      severity_id: 2,
      status_id: 1,
      action_id: 2,
      disposition_id: 2,
      count: 12,
      metadata: { version: '1.1.0', product: { name: 'portsnare', vendor_name: 'portsnare' } },
      finding_info: { uid: 'portsnare/Portsnare-Table1/block/203.0.113.7', title: 'portsnare blocked 203.0.113.7: port scan', created_time: NOW - 60_000 },
      cloud: { provider: 'AWS', region: 'eu-west-1', account: { uid: '123456789012' } },
      src_endpoint: { ip: '203.0.113.7' },
    });
  });

  it('updates on a re-offence and closes on the lift', () => {
    expect(ocsfDetectionFinding(record({ offences: 2, blockedAt: NOW }), NOW + 1, TARGET)).toMatchObject({ activity_id: 2, type_uid: 200402, severity_id: 3 });
    expect(ocsfDetectionFinding(record({ active: false }), NOW + 2, TARGET)).toMatchObject({ activity_id: 3, type_uid: 200403, status_id: 4, status: 'Resolved' });
  });
});
