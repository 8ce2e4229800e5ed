/**
 * Decoy listeners on a service's own address (docs/deploy.md, "Sensors"): extra listeners on an
 * existing Network Load Balancer, on ports the service never uses, forwarding to a portsnare
 * sensor. A scanner enumerating the service's address touches them first.
 *
 * Client addresses are preserved (instance targets do so by default; IP targets get
 * `preserve_client_ip.enabled`), so the sensor reports the scanner, not the load balancer.
 */
import { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Construct } from 'constructs';
import { resolveDecoyPorts, type DecoyPorts, type DecoyPortsProps } from './sensorConfig';

/** Listeners per Network Load Balancer (Elastic Load Balancing quota, default 50). */
export const NLB_LISTENER_QUOTA = 50;

export interface DecoyListenersProps extends DecoyPortsProps {
  /** the existing load balancer, e.g. `elbv2.NetworkLoadBalancer.fromNetworkLoadBalancerAttributes(...)` */
  readonly loadBalancer: elbv2.INetworkLoadBalancer;
  readonly vpc: ec2.IVpc;
  /** the sensor for one decoy port: `new InstanceTarget(ec2Sensor.instance, port)` or `fargateSensor.loadBalancerTarget(port, 'tcp')` */
  readonly target: (port: number, protocol: 'tcp' | 'udp') => elbv2.INetworkLoadBalancerTarget;
  /**
   * Listeners the load balancer already has, so the quota check counts them.
   * @default 0
   */
  readonly existingListeners?: number;
  /**
   * The account's listener quota for this load balancer.
   * @default 50
   */
  readonly listenerQuota?: number;
}

export class DecoyListeners extends Construct {
  public readonly listeners: elbv2.NetworkListener[] = [];
  public readonly targetGroups: elbv2.NetworkTargetGroup[] = [];
  public readonly ports: DecoyPorts;

  constructor(scope: Construct, id: string, props: DecoyListenersProps) {
    super(scope, id);
    const owner = `DecoyListeners ${this.node.path}`;
    this.ports = resolveDecoyPorts(props, owner);
    const existing = props.existingListeners ?? 0;
    const quota = props.listenerQuota ?? NLB_LISTENER_QUOTA;
    const wanted = this.ports.tcp.length + this.ports.udp.length;
    if (existing + wanted > quota) {
      throw new Error(
        `${owner}: invalid props:\n- tcpPorts and udpPorts ask for ${wanted} listeners; with existingListeners ${existing} that exceeds listenerQuota ${quota}`,
      );
    }
    const healthPort = this.ports.tcp[0];
    if (this.ports.udp.length && healthPort === undefined) {
      throw new Error(`${owner}: invalid props:\n- udpPorts need at least one TCP decoy port: UDP target groups are health-checked over TCP`);
    }

    const add = (protocol: 'tcp' | 'udp', port: number): void => {
      const elbProtocol = protocol === 'tcp' ? elbv2.Protocol.TCP : elbv2.Protocol.UDP;
      const targetGroup = new elbv2.NetworkTargetGroup(this, `${protocol.toUpperCase()}${port}Targets`, {
        vpc: props.vpc,
        port,
        protocol: elbProtocol,
        targets: [props.target(port, protocol)],
        preserveClientIp: true,
        deregistrationDelay: Duration.seconds(10),
        healthCheck: { protocol: elbv2.Protocol.TCP, port: String(protocol === 'tcp' ? port : healthPort), interval: Duration.seconds(30) },
      });
      const listener = props.loadBalancer.addListener(`${id}${protocol.toUpperCase()}${port}`, {
        port,
        protocol: elbProtocol,
        defaultTargetGroups: [targetGroup],
      });
      this.targetGroups.push(targetGroup);
      this.listeners.push(listener);
    };
    for (const port of this.ports.tcp) add('tcp', port);
    for (const port of this.ports.udp) add('udp', port);
  }
}
