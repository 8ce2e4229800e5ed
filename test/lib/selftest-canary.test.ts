/**
 * The selftest canary in the stack's config (lib/settings.ts, lib/appConfig.ts): the guard the
 * functions get opens exactly the canary's host CIDR, and a canary that is not a single address of
 * a documentation range (RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24; RFC 3849:
 * 2001:db8::/32), or that is one of the stack's own or allowlisted addresses, is refused at synth
 * with the key and the value named. Verdicts are checked with the guard of core/guard.ts, the one
 * decide and enforce apply; the expected answers are written out from the RFCs.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { GuardSettingsSchema, NeverBlockGuard } from '../../core/guard';
import { EnumerationBlocker, pipelineSettingsFrom, validateEnumerationBlockerProps } from '../../lib';
import { parsePortsnareContext } from '../../lib/appConfig';

function guardOf(canary: string | undefined, vpcCidrs: string[] = ['10.20.0.0/16']): NeverBlockGuard {
  const settings = pipelineSettingsFrom({ vpcCidrs, ...(canary !== undefined ? { selftestCanaryAddress: canary } : {}) });
  return new NeverBlockGuard(GuardSettingsSchema.parse(settings.guard));
}

describe('selftestCanaryAddress', () => {
  it('opens the canary alone: its neighbours, private and own addresses stay refused', () => {
    const guard = guardOf('192.0.2.254');
    expect(guard.check('192.0.2.254')).toEqual({ blockable: true });
    for (const refused of ['192.0.2.253', '192.0.2.0/24', '198.51.100.7', '10.0.0.1', '10.20.0.5', '127.0.0.1', '169.254.169.254', '192.168.1.1']) {
      expect(guard.check(refused).blockable, refused).toBe(false);
    }
    expect(guardOf(undefined).check('192.0.2.254').blockable).toBe(false);
  });

  it('takes an IPv6 canary of 2001:db8::/32 as its /128', () => {
    const guard = guardOf('2001:db8::c');
    expect(guard.check('2001:db8::c')).toEqual({ blockable: true });
    expect(guard.check('2001:db8::d').blockable).toBe(false);
  });

  it.each([
    ['10.0.0.5', /selftestCanaryAddress "10\.0\.0\.5" is not in a documentation range/],
    ['8.8.8.8', /selftestCanaryAddress "8\.8\.8\.8" is not in a documentation range/],
    ['192.0.2.0/24', /selftestCanaryAddress "192\.0\.2\.0\/24" is not one IP address/],
    ['nonsense', /selftestCanaryAddress "nonsense" is not one IP address/],
  ])('refuses %s, naming the prop and the value', (canary, message) => {
    expect(validateEnumerationBlockerProps({ selftestCanaryAddress: canary }, 'eu-west-1').join('\n')).toMatch(message);
  });

  it('refuses a canary inside the stack\'s own networks or its allowlist', () => {
    expect(validateEnumerationBlockerProps({ selftestCanaryAddress: '203.0.113.9', vpcCidrs: ['203.0.113.0/24'] }, 'eu-west-1').join('\n')).toMatch(
      /selftestCanaryAddress "203\.0\.113\.9" is in the protected network 203\.0\.113\.0\/24/,
    );
    expect(validateEnumerationBlockerProps({ selftestCanaryAddress: '203.0.113.9', policy: { allowlist: ['203.0.113.9'] } }, 'eu-west-1').join('\n')).toMatch(
      /selftestCanaryAddress "203\.0\.113\.9" is in the allowlist 203\.0\.113\.9/,
    );
  });

  it('puts the canary and the alarm topic in the stack outputs ("-" when none)', () => {
    const stack = new Stack(new App(), 'Canary', { env: { account: '111122223333', region: 'eu-west-1' } });
    new EnumerationBlocker(stack, 'Blocker', { selftestCanaryAddress: '198.51.100.254' });
    const outputs = Template.fromStack(stack).toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.PortsnareCanaryAddress?.Value).toBe('198.51.100.254');
    expect(outputs.PortsnareAlarmTopicArn?.Value).toBe('-');
  });
});

describe('portsnare.selftest.canaryAddress (the app context)', () => {
  it('defaults to 192.0.2.254 and may be turned off with false', () => {
    const parsed = parsePortsnareContext({});
    expect(parsed.ok && parsed.value.selftest.canaryAddress).toBe('192.0.2.254');
    const off = parsePortsnareContext({ selftest: { canaryAddress: false } });
    expect(off.ok && off.value.selftest.canaryAddress).toBe(false);
  });

  it('names the key and the value of a canary that is private or in vpcCidrs', () => {
    expect(parsePortsnareContext({ selftest: { canaryAddress: '172.16.0.9' } })).toMatchObject({ ok: false, error: expect.stringMatching(/^portsnare\.selftest\.canaryAddress: "172\.16\.0\.9" is not in a documentation range/) });
    expect(parsePortsnareContext({ vpcCidrs: ['192.0.2.0/24'] })).toMatchObject({
      ok: false,
      error: expect.stringMatching(/portsnare\.selftest\.canaryAddress: "192\.0\.2\.254" is in the protected network 192\.0\.2\.0\/24/),
    });
  });
});
