/**
 * lib/settings.ts: the props → PORTSNARE_SETTINGS document, and props checked by core's schemas
 * with the fault named after the prop. Expected values are written out, not computed.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { describe, expect, it } from 'vitest';
import { pipelineSettingsFrom, validateEnumerationBlockerProps, type EnumerationBlockerProps } from '../../lib';

describe('pipelineSettingsFrom', () => {
  it('fills in the defaults of the policy, the rule range and the quota', () => {
    expect(pipelineSettingsFrom({})).toEqual({
      policy: { baseTtlSeconds: 3600, escalationFactor: 2, maxTtlSeconds: 604800, offenceWindowSeconds: 2592000, blockUnverified: false, burstLimitPerMinute: 100, widestIpv4Prefix: 16, widestIpv6Prefix: 48, maxManualTtlSeconds: 2592000 },
      guard: { allowlist: [], protectedCidrs: [] },
      nacl: { aclIds: [], ruleRange: [1, 99], quotaPerDirection: 20, residenceSeconds: 300 },
      waf: { sets: [] },
      simulation: { all: false, inputs: [] },
    });
  });

  it('turns durations into seconds and the props into their settings keys', () => {
    const sets = [{ scope: 'REGIONAL' as const, family: 'ipv4' as const, name: 'n', id: 'i' }];
    const settings = pipelineSettingsFrom(
      {
        naclIds: ['acl-0123456789abcdef0'],
        naclRuleRange: [10, 60],
        naclQuota: 40,
        naclResidenceSeconds: 120,
        vpcCidrs: ['10.0.0.0/16'],
        policy: { baseTtl: Duration.minutes(30), maxTtl: Duration.days(2), offenceWindow: Duration.days(1), escalationFactor: 3, blockUnverified: true, burstLimitPerMinute: 7, allowlist: ['203.0.113.0/24'] },
      },
      sets,
    );
    expect(settings).toEqual({
      policy: { baseTtlSeconds: 1800, escalationFactor: 3, maxTtlSeconds: 172800, offenceWindowSeconds: 86400, blockUnverified: true, burstLimitPerMinute: 7, widestIpv4Prefix: 16, widestIpv6Prefix: 48, maxManualTtlSeconds: 2592000 },
      guard: { allowlist: ['203.0.113.0/24'], protectedCidrs: ['10.0.0.0/16'] },
      nacl: { aclIds: ['acl-0123456789abcdef0'], ruleRange: [10, 60], quotaPerDirection: 40, residenceSeconds: 120 },
      waf: { sets },
      simulation: { all: false, inputs: [] },
    });
  });

  it('carries the widest prefixes and the manual TTL cap, a Duration in seconds', () => {
    const { policy } = pipelineSettingsFrom({ policy: { widestIpv4Prefix: 24, widestIpv6Prefix: 64, maxManualTtl: Duration.days(2) } });
    expect(policy).toMatchObject({ widestIpv4Prefix: 24, widestIpv6Prefix: 64, maxManualTtlSeconds: 172800 });
  });

  it('carries the IPv6 block prefix and the TTL jitter only when given (the functions default them: /64, no jitter)', () => {
    expect(pipelineSettingsFrom({ policy: { ipv6BlockPrefix: 56, ttlJitterPercent: 12.5 } }).policy).toMatchObject({ ipv6BlockPrefix: 56, ttlJitterPercent: 12.5 });
    expect(pipelineSettingsFrom({}).policy).not.toHaveProperty('ipv6BlockPrefix');
    expect(pipelineSettingsFrom({}).policy).not.toHaveProperty('ttlJitterPercent');
  });

  it('refuses an IPv6 block prefix wider than the widest IPv6 prefix, naming both', () => {
    expect(validateEnumerationBlockerProps({ policy: { ipv6BlockPrefix: 56, widestIpv6Prefix: 64 } }, 'eu-west-1')).toEqual([
      'policy.ipv6BlockPrefix 56: ipv6BlockPrefix 56 is wider than widestIpv6Prefix 64: every prefix block would be refused',
    ]);
  });

  it('names the new policy props at fault', () => {
    const errors = validateEnumerationBlockerProps({ policy: { widestIpv4Prefix: 0, widestIpv6Prefix: 129, maxManualTtl: Duration.seconds(30) } }, 'eu-west-1');
    expect(errors).toEqual(
      expect.arrayContaining(['policy.widestIpv4Prefix 0: must be at least 1', 'policy.widestIpv6Prefix 129: must be at most 128', 'policy.maxManualTtl 30s: must be at least 60']),
    );
  });
});

describe('validateEnumerationBlockerProps', () => {
  const errors = (props: EnumerationBlockerProps): string[] => validateEnumerationBlockerProps(props, 'eu-west-1');

  it('accepts the defaults', () => {
    expect(errors({})).toEqual([]);
  });

  it.each<[string, EnumerationBlockerProps, string]>([
    ['a base TTL under a minute', { policy: { baseTtl: Duration.seconds(30) } }, 'policy.baseTtl 30s: must be at least 60'],
    ['a TTL cap over a year', { policy: { maxTtl: Duration.days(400) } }, 'policy.maxTtl 34560000s: must be at most 31536000'],
    ['an offence window under a minute', { policy: { offenceWindow: Duration.seconds(59) } }, 'policy.offenceWindow 59s: must be at least 60'],
    ['an escalation factor over 100', { policy: { escalationFactor: 101 } }, 'policy.escalationFactor 101: must be at most 100'],
    ['a fractional burst limit', { policy: { burstLimitPerMinute: 1.5 } }, 'policy.burstLimitPerMinute 1.5: must be a whole number'],
    ['an IPv6 block prefix wider than a /48', { policy: { ipv6BlockPrefix: 40 } }, 'policy.ipv6BlockPrefix 40: must be at least 48'],
    ['an IPv6 block prefix past /128', { policy: { ipv6BlockPrefix: 129 } }, 'policy.ipv6BlockPrefix 129: must be at most 128'],
    ['a fractional IPv6 block prefix', { policy: { ipv6BlockPrefix: 56.5 } }, 'policy.ipv6BlockPrefix 56.5: must be a whole number'],
    ['a TTL jitter over 100 %', { policy: { ttlJitterPercent: 150 } }, 'policy.ttlJitterPercent 150: must be at most 100'],
    ['a negative TTL jitter', { policy: { ttlJitterPercent: -1 } }, 'policy.ttlJitterPercent -1: must be at least 0'],
    ['a VPC CIDR that is none', { vpcCidrs: ['10.0.0.0/16', 'my-vpc'] }, 'vpcCidrs[1] "my-vpc": must be an IPv4/IPv6 address or CIDR'],
    ['a quota of 0', { naclQuota: 0 }, 'naclQuota 0: must be at least 1'],
    ['a fractional rule number', { naclRuleRange: [1.5, 10] }, 'naclRuleRange [1.5, 10]: element 0 must be a whole number'],
    ['a reconcile interval over an hour', { reconcileMinutes: 90 }, 'reconcileMinutes 90 must be a whole number of minutes within 1–60'],
    ['a reconcile interval of 0', { reconcileMinutes: 0 }, 'reconcileMinutes 0 must be a whole number of minutes within 1–60'],
    ['a fractional reconcile interval', { reconcileMinutes: 0.5 }, 'reconcileMinutes 0.5 must be a whole number of minutes within 1–60'],
    ['a negative NACL residence time', { naclResidenceSeconds: -1 }, 'naclResidenceSeconds -1: must be at least 0'],
    ['a NACL residence time over a day', { naclResidenceSeconds: 90_000 }, 'naclResidenceSeconds 90000: must be at most 86400'],
    ['a fractional NACL residence time', { naclResidenceSeconds: 2.5 }, 'naclResidenceSeconds 2.5: must be a whole number'],
  ])('rejects %s, naming the prop and the value', (_what, props, message) => {
    expect(errors(props)).toEqual([message]);
  });

  it('reports faults of several props at once, including the rule-range order', () => {
    expect(errors({ naclRuleRange: [5, 1], naclQuota: 99, policy: { escalationFactor: 0 } })).toEqual([
      'policy.escalationFactor 0: must be at least 1',
      'naclRuleRange [5, 1]: first rule number must not exceed the last',
      'naclQuota 99: must be at most 40',
    ]);
  });

  it('names the right element when tokens of the same app come first', () => {
    const stack = new Stack(new App(), 'S');
    const acl = new ec2.CfnNetworkAcl(stack, 'Acl', { vpcId: 'vpc-0123456789abcdef0' });
    const vpc = new ec2.CfnVPC(stack, 'Vpc', { cidrBlock: '10.0.0.0/16' });
    expect(errors({ naclIds: [acl.ref, 'acl-nope'], vpcCidrs: [vpc.attrCidrBlock, '300.1.1.1/8'] })).toEqual([
      'vpcCidrs[1] "300.1.1.1/8": must be an IPv4/IPv6 address or CIDR',
      'naclIds[1] "acl-nope": must be a network ACL id (acl-…)',
    ]);
  });
});
