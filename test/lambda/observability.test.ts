import { afterEach, describe, expect, it, vi } from 'vitest';
import { powertoolsObservability } from '../../aws/observability';

describe('powertoolsObservability', () => {
  afterEach(() => vi.restoreAllMocks());

  it('publishes counts as CloudWatch EMF in the Portsnare namespace with the service dimension', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const obs = powertoolsObservability();
    obs.count('Blocks', 3);
    obs.seconds('EnforcementLagSeconds', 1.5);
    obs.flush();
    const emf = lines.map((l) => l.trim()).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => '_aws' in l);
    expect(emf).toBeDefined();
    expect(emf).toMatchObject({ Blocks: 3, EnforcementLagSeconds: 1.5, service: 'portsnare' });
    const aws = emf?._aws as { CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string; Unit: string }> }> };
    expect(aws.CloudWatchMetrics[0]?.Namespace).toBe('Portsnare');
    expect(aws.CloudWatchMetrics[0]?.Metrics).toEqual(expect.arrayContaining([{ Name: 'Blocks', Unit: 'Count' }, { Name: 'EnforcementLagSeconds', Unit: 'Seconds' }]));
  });
});
