import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import { describe, expect, it } from 'vitest';
import { DecoyListeners, type DecoyListenersProps } from '../../lib';
import { resourcesOf } from './helpers';

process.env.CDK_VALIDATION = 'false';

const NLB_ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/shop/0123456789abcdef';

function build(props: Partial<DecoyListenersProps>): Template {
  const stack = new Stack(new App(), 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-0123456789abcdef0', availabilityZones: ['eu-west-1a'], publicSubnetIds: ['subnet-0123456789abcdef0'] });
  const loadBalancer = elbv2.NetworkLoadBalancer.fromNetworkLoadBalancerAttributes(stack, 'Nlb', { loadBalancerArn: NLB_ARN, vpc });
  new DecoyListeners(stack, 'Decoys', {
    loadBalancer,
    vpc,
    target: (port) => new targets.InstanceIdTarget('i-0123456789abcdef0', port),
    ...props,
  });
  return Template.fromStack(stack);
}

describe('DecoyListeners', () => {
  it('adds a TCP and a UDP listener, the UDP target group health-checked over a TCP decoy port', () => {
    const template = build({ tcpPorts: [23], udpPorts: [161] });
    const listeners = resourcesOf(template, 'AWS::ElasticLoadBalancingV2::Listener').map(([, l]) => l.Properties as Record<string, unknown>);
    expect(listeners.map((l) => `${String(l.Protocol)} ${String(l.Port)}`).sort()).toEqual(['TCP 23', 'UDP 161']);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Protocol: 'UDP', Port: 161, HealthCheckProtocol: 'TCP', HealthCheckPort: '23' });
  });

  it('refuses more listeners than the load balancer quota leaves', () => {
    expect(() => build({ tcpPorts: [23, 445], existingListeners: 49 })).toThrow(/ask for 2 listeners; with existingListeners 49 that exceeds listenerQuota 50/);
  });

  it('refuses UDP decoys without a TCP port to health-check', () => {
    expect(() => build({ tcpPorts: [], udpPorts: [161] })).toThrow(/udpPorts need at least one TCP decoy port/);
  });
});
