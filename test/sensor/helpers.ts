/** Shared bits of the sensor tests: events, temporary directories, waiting for a condition. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScanDetected } from '../../core/event';

export function scanEvent(attacker: string, overrides: Partial<ScanDetected> = {}): ScanDetected {
  return {
    version: 1,
    sensorId: 'test-sensor',
    attacker,
    probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }],
    probeCount: 1,
    handshake: true,
    firstSeen: '2026-11-21T10:00:00.000Z',
    lastSeen: '2026-11-21T10:00:00.250Z',
    ...overrides,
  };
}

/** 198.51.100.x, 203.0.113.x … n distinct TEST-NET addresses */
export function testNetAddress(n: number): string {
  const nets = ['198.51.100', '203.0.113', '192.0.2'];
  return `${nets[Math.floor(n / 250) % nets.length]}.${(n % 250) + 1}`;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `portsnare-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `check` until it is true (an event we cannot await directly), failing after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
