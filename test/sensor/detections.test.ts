import { describe, expect, it } from 'vitest';
import { DetectionRing } from '../../sensor/detections';
import { scanEvent } from './helpers';

describe('DetectionRing (GET /detections)', () => {
  it('keeps the newest `capacity` detections, newest first, and counts every one seen', () => {
    const ring = new DetectionRing(3);
    for (let i = 1; i <= 5; i++) ring.add(scanEvent(`198.51.100.${i}`), `id-${i}`, i * 1000);

    expect(ring.list().map((d) => d.attacker)).toEqual(['198.51.100.5', '198.51.100.4', '198.51.100.3']);
    expect(ring.list(4000).map((d) => d.id)).toEqual(['id-5', 'id-4']);
    expect(ring.list(0, 1)).toHaveLength(1);
    expect(ring.seen).toBe(5);
  });

  it('keeps at most 32 probes of a detection; probeCount still says how many there were', () => {
    const probes = Array.from({ length: 40 }, (_, i) => ({ protocol: 'tcp' as const, port: 1000 + i, kind: 'syn' as const }));
    const entry = new DetectionRing(2).add(scanEvent('198.51.100.9', { probes, probeCount: 40 }), 'x', 1);

    expect(entry.probes).toHaveLength(32);
    expect(entry.probeCount).toBe(40);
  });
});
