import { describe, expect, it } from 'vitest';
import { interpretEvent } from '../../core/intake';
import { PolicySettingsSchema, decide } from '../../core/policy';

const NOW = Date.parse('2026-11-21T10:00:00Z');
const scan = (detail: Record<string, unknown>, source = 'portsnare.sensor') => ({
  id: 'e1',
  source,
  'detail-type': 'Scan Detected',
  time: '2026-11-21T10:00:00Z',
  detail: {
    version: 1,
    sensorId: 'i-1',
    attacker: '::ffff:203.0.113.7',
    probes: [{ protocol: 'tcp', port: 23, kind: 'syn' }],
    probeCount: 5,
    handshake: false,
    firstSeen: '2026-11-21T09:59:00Z',
    lastSeen: '2026-11-21T10:00:00Z',
    ...detail,
  },
});

describe('interpretEvent', () => {
  it('reads a Scan Detected into a sighting with the canonical attacker', () => {
    expect(interpretEvent(scan({}), NOW)).toEqual({
      kind: 'sightings',
      sightings: [
        {
          target: '203.0.113.7',
          family: 'ipv4',
          reason: 'sensor',
          eventId: 'e1',
          sensorId: 'i-1',
          firstSeen: Date.parse('2026-11-21T09:59:00Z'),
          lastSeen: NOW,
          hits: 5,
          verified: false,
          ports: [23],
        },
      ],
    });
  });

  it('a sensor sighting is verified only by proof "handshake" (or handshake: true without proof)', () => {
    const verified = (detail: Record<string, unknown>): unknown => {
      const intake = interpretEvent(scan(detail), NOW);
      return intake.kind === 'sightings' ? intake.sightings[0]?.verified : intake.kind;
    };
    expect(verified({ proof: 'none' })).toBe(false);
    expect(verified({ handshake: true, proof: 'handshake' })).toBe(true);
    expect(verified({ handshake: true })).toBe(true);
    expect(verified({ handshake: true, proof: 'none' })).toBe('malformed');
  });

  it('a quarantine-only sighting (proof none) is never blocked in the cloud by default; only with blockUnverified', () => {
    const intake = interpretEvent(scan({ proof: 'none', probeCount: 50 }), NOW);
    if (intake.kind !== 'sightings') throw new Error(intake.kind);
    const sighting = intake.sightings[0]!;
    expect(decide(undefined, sighting, NOW, PolicySettingsSchema.parse({})).action).not.toBe('block');
    expect(decide(undefined, sighting, NOW, PolicySettingsSchema.parse({ blockUnverified: true })).action).toBe('block');
  });

  it('treats a Scan Detected from the CLI as a verified manual block', () => {
    const intake = interpretEvent(scan({}, 'portsnare.cli'), NOW);
    expect(intake).toMatchObject({ kind: 'sightings', sightings: [{ reason: 'manual', verified: true }] });
  });

  it('names the field at fault of a malformed event', () => {
    expect(interpretEvent(scan({ attacker: 'not-an-ip' }), NOW)).toMatchObject({ kind: 'malformed', reason: expect.stringContaining('attacker') });
    expect(interpretEvent({ source: 'portsnare.sensor' }, NOW)).toMatchObject({ kind: 'malformed', reason: expect.stringContaining('id') });
  });

  it('ignores events of other sources and GuardDuty findings of other types', () => {
    expect(interpretEvent({ ...scan({}), source: 'someone.else' }, NOW).kind).toBe('ignored');
    const finding = { id: 'g', source: 'aws.guardduty', 'detail-type': 'GuardDuty Finding', detail: { type: 'UnauthorizedAccess:EC2/SSHBruteForce', service: { action: {} } } };
    expect(interpretEvent(finding, NOW).kind).toBe('ignored');
  });

  it('finds no address in a port probe finding without remote details: malformed', () => {
    const finding = {
      id: 'g',
      source: 'aws.guardduty',
      'detail-type': 'GuardDuty Finding',
      detail: { type: 'Recon:EC2/PortProbeUnprotectedPort', service: { action: { portProbeAction: { portProbeDetails: [{ localPortDetails: { port: 22 } }] } } } },
    };
    expect(interpretEvent(finding, NOW)).toMatchObject({ kind: 'malformed', reason: expect.stringContaining('no remote IP') });
  });
});

// Shapes from the GuardDuty finding format (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_findings-summary.html):
// absent values arrive as null.
const finding = (type: string, service: Record<string, unknown>, resource: Record<string, unknown> = {}) => ({
  version: '0',
  id: `gd-${type}`,
  'detail-type': 'GuardDuty Finding',
  source: 'aws.guardduty',
  time: '2026-11-21T10:00:00Z',
  detail: { schemaVersion: '2.0', id: 'f1', type, resource, service: { serviceName: 'guardduty', ...service } },
});

describe('interpretEvent and GuardDuty', () => {
  it('turns Recon:EC2/Portscan into an alert about our instance, never a sighting of its victim', () => {
    const intake = interpretEvent(
      finding(
        'Recon:EC2/Portscan',
        { count: 3, action: { actionType: 'NETWORK_CONNECTION', networkConnectionAction: { remoteIpDetails: { ipAddressV4: '203.0.113.42' } } } },
        { resourceType: 'Instance', instanceDetails: { instanceId: 'i-0abc' } },
      ),
      NOW,
    );
    expect(intake).toEqual({ kind: 'alert', alert: 'own-instance-scanning', instanceId: 'i-0abc', remote: '203.0.113.42', findingId: 'f1' });
  });

  it('reads a port probe finding whose absent fields are null, and skips only the detail without an address', () => {
    const intake = interpretEvent(
      finding('Recon:EC2/PortProbeUnprotectedPort', {
        count: null,
        eventFirstSeen: null,
        eventLastSeen: '2026-11-21T09:59:00Z',
        action: {
          actionType: 'PORT_PROBE',
          portProbeAction: {
            blocked: false,
            portProbeDetails: [
              { localPortDetails: { port: 22 }, remoteIpDetails: { ipAddressV4: '203.0.113.40', organization: null } },
              { localPortDetails: { port: 23 }, remoteIpDetails: null },
              { localPortDetails: { port: 3389 }, remoteIpDetails: { ipAddressV4: null, ipAddressV6: '2001:db8::41' } },
            ],
          },
        },
      }),
      NOW,
    );
    expect(intake.kind).toBe('sightings');
    if (intake.kind !== 'sightings') return;
    expect(intake.sightings.map((s) => s.target)).toEqual(['203.0.113.40', '2001:db8::41']);
    expect(intake.sightings[0]).toMatchObject({ reason: 'guardduty', hits: 1, verified: true });
  });
});
