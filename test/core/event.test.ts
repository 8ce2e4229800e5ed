import { describe, expect, it } from 'vitest';
import { parseDuration, BlockRequestedSchema } from '../../core/commands';
import { MAX_PROBES, parseScanDetected, proofOf } from '../../core/event';
import { PipelineSettingsSchema } from '../../core/settings';

const valid = {
  version: 1,
  sensorId: 'i-0123456789abcdef0',
  attacker: '198.51.100.7',
  probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }],
  probeCount: 17,
  handshake: true,
  firstSeen: '2026-11-21T10:00:00.000Z',
  lastSeen: '2026-11-21T10:00:00.250Z',
};

describe('Scan Detected v1', () => {
  it('accepts the documented example event (the event contract of ARCHITECTURE.md)', () => {
    expect(parseScanDetected(valid)).toEqual({ ok: true, value: valid });
  });

  it.each([
    ['version', { version: 2 }],
    ['attacker', { attacker: '198.51.100.300' }],
    ['probes.0.kind', { probes: [{ protocol: 'tcp', port: 23, kind: 'stealthy' }] }],
    ['probes', { probes: Array.from({ length: MAX_PROBES + 1 }, (_, port) => ({ protocol: 'tcp', port, kind: 'syn' })) }],
    ['lastSeen', { lastSeen: '2026-11-21T09:00:00Z' }],
    ['probeCount', { probeCount: 0 }],
    ['probes.1', { probes: [{ protocol: 'udp', port: 53, kind: 'udp' }, { protocol: 'udp', port: 53, kind: 'udp' }], probeCount: 2 }],
    ['extra', { extra: true }],
  ])('names the field at fault (%s)', (field, change) => {
    const result = parseScanDetected({ ...valid, ...change });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toContain(field === 'extra' ? 'extra' : `${field}:`);
  });

  it('proof: optional, one of handshake/none, must agree with handshake; read from handshake when absent', () => {
    expect(parseScanDetected({ ...valid, proof: 'handshake' })).toMatchObject({ ok: true, value: { proof: 'handshake' } });
    expect(parseScanDetected({ ...valid, handshake: false, proof: 'none' }).ok).toBe(true);
    const contradiction = parseScanDetected({ ...valid, handshake: true, proof: 'none' });
    expect(contradiction.ok ? '' : contradiction.error).toBe('proof: "none" contradicts handshake: true');
    const unknown = parseScanDetected({ ...valid, proof: 'nonce' });
    expect(unknown.ok ? '' : unknown.error).toMatch(/^proof: /);
    expect(proofOf({ handshake: true })).toBe('handshake');
    expect(proofOf({ handshake: false })).toBe('none');
    expect(proofOf({ handshake: false, proof: 'none' })).toBe('none');
  });
});

describe('operator requests and settings', () => {
  it('canonicalises a Block Requested target and parses durations', () => {
    expect(BlockRequestedSchema.parse({ version: 1, target: '::ffff:198.51.100.7', requestedBy: 'alice' }).target).toBe('198.51.100.7');
    expect(BlockRequestedSchema.safeParse({ version: 1, target: '198.51.100.7/24', requestedBy: 'a' }).success).toBe(false);
    expect([parseDuration('2h'), parseDuration('90'), parseDuration('1w'), parseDuration('soon')]).toEqual([7200, 90, 604800, undefined]);
  });

  it('defaults the pipeline settings and refuses a quota above 40 or a reversed range', () => {
    const defaults = PipelineSettingsSchema.parse({});
    expect(defaults.nacl).toEqual({ aclIds: [], ruleRange: [1, 99], quotaPerDirection: 20, residenceSeconds: 300 });
    expect(PipelineSettingsSchema.safeParse({ nacl: { quotaPerDirection: 41 } }).success).toBe(false);
    expect(PipelineSettingsSchema.safeParse({ nacl: { ruleRange: [50, 10] } }).success).toBe(false);
    expect(PipelineSettingsSchema.safeParse({ nacl: { ruleRange: [1, 32767] } }).success).toBe(false);
  });
});
