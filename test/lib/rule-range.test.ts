/**
 * Each stack owns its rule range in a shared network ACL (core/nacl.ts "Ownership"): two
 * pipelines of one app listing the same ACL with overlapping ranges are refused at synth, naming
 * both; disjoint ranges, or different ACLs, are fine.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { claimRuleRange } from '../../lib/NaclCleanup';

const ACL = 'acl-0123456789abcdef0';
const OTHER = 'acl-0fedcba9876543210';

function scopes(): [Construct, Construct, Construct] {
  const app = new App();
  return [new Construct(new Stack(app, 'One'), 'Portsnare'), new Construct(new Stack(app, 'Two'), 'Portsnare'), new Construct(new Stack(app, 'Three'), 'Portsnare')];
}

describe('rule ranges in a shared ACL', () => {
  it('refuses an overlapping range in the same ACL, naming both stacks, the ranges and the ACL', () => {
    const [one, two] = scopes();
    claimRuleRange(one, [ACL], [10, 60]);
    expect(() => claimRuleRange(two, [OTHER, ACL], [60, 90])).toThrow(
      `naclRuleRange [60, 90] of Two/Portsnare overlaps [10, 60] of One/Portsnare in ${ACL}: each stack must own a rule range of its own in a shared network ACL`,
    );
  });

  it('accepts disjoint ranges in the same ACL, and any range in another ACL', () => {
    const [one, two, three] = scopes();
    claimRuleRange(one, [ACL], [10, 60]);
    expect(() => claimRuleRange(two, [ACL], [61, 90])).not.toThrow();
    expect(() => claimRuleRange(three, [OTHER], [10, 90])).not.toThrow();
  });

  it('apps are apart: the same range in two apps is not seen here (it is reported at run time)', () => {
    const [a] = scopes();
    const [b] = scopes();
    claimRuleRange(a, [ACL], [10, 60]);
    expect(() => claimRuleRange(b, [ACL], [10, 60])).not.toThrow();
  });
});
