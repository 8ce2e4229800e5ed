import { describe, expect, it } from 'vitest';
import { jsonLogger } from '../../sensor/log';

describe('agent log', () => {
  it('writes one JSON object per line with time, level and message, below the threshold nothing', () => {
    const lines: string[] = [];
    const log = jsonLogger('info', (text) => lines.push(text));
    log.debug('hidden');
    log.warn('port skipped', { port: 23 });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'warn', msg: 'port skipped', port: 23, time: expect.any(String) });
  });

  it('gives structured lines from other modules a level and a message', () => {
    const lines: string[] = [];
    const log = jsonLogger('info', (text) => lines.push(text));
    log.line({ target: '198.51.100.7', why: 'offence 1' });
    log.line({ level: 'error', msg: 'nft failed', code: 1 });
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      { time: expect.any(String), level: 'info', msg: 'local pipeline', target: '198.51.100.7', why: 'offence 1' },
      { time: expect.any(String), level: 'error', msg: 'nft failed', code: 1 },
    ]);
  });
});
