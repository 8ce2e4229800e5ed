/**
 * A `Scan Detected` event as EventBridge hands it to the decide function (the envelope of
 * https://docs.aws.amazon.com/eventbridge/latest/ref/overiew-event-structure.html around the
 * v1 detail of core/event.ts), for tests and benchmarks.
 */
export interface ScanEventOptions {
  readonly id: string;
  readonly attacker: string;
  /** epoch ms of the event, first and last seen */
  readonly at: number;
  readonly sensorId?: string;
  readonly probes?: ReadonlyArray<{ protocol: 'tcp' | 'udp'; port: number; kind: string }>;
  readonly probeCount?: number;
  readonly handshake?: boolean;
}

export function scanDetectedEvent(options: ScanEventOptions): Record<string, unknown> {
  const time = new Date(options.at).toISOString();
  const probes = options.probes ?? [{ protocol: 'tcp', port: 23, kind: 'connect' }];
  return {
    version: '0',
    id: options.id,
    'detail-type': 'Scan Detected',
    source: 'portsnare.sensor',
    account: '123456789012',
    time,
    region: 'eu-west-1',
    resources: [],
    detail: {
      version: 1,
      sensorId: options.sensorId ?? 'i-0123456789abcdef0',
      attacker: options.attacker,
      probes,
      probeCount: options.probeCount ?? 3,
      handshake: options.handshake ?? true,
      firstSeen: time,
      lastSeen: time,
    },
  };
}
