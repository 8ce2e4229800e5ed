import { describe, expect, it } from 'vitest';
import { boundText, DigestAccumulator, DigestSettingsSchema, isQuiet, localMinuteOfDay, renderText, shouldSend, subjectOf, windowStart } from '../../core/digest';

const at = (iso: string): number => Date.parse(iso);

describe('quiet hours', () => {
  it('across midnight, on the wall clock of the zone (Europe/Berlin, CET = UTC+1 in winter)', () => {
    const q = '22:00-07:00';
    expect(isQuiet(at('2026-12-01T20:59:00Z'), q, 'Europe/Berlin')).toBe(false); // 21:59
    expect(isQuiet(at('2026-12-01T21:00:00Z'), q, 'Europe/Berlin')).toBe(true); // 22:00
    expect(isQuiet(at('2026-12-01T23:30:00Z'), q, 'Europe/Berlin')).toBe(true); // 00:30
    expect(isQuiet(at('2026-12-02T05:59:00Z'), q, 'Europe/Berlin')).toBe(true); // 06:59
    expect(isQuiet(at('2026-12-02T06:00:00Z'), q, 'Europe/Berlin')).toBe(false); // 07:00, the end is not quiet
  });

  it('follows DST: on 2026-03-29 Berlin moves from UTC+1 to UTC+2 at 01:00 UTC, so quiet hours end an hour earlier in UTC', () => {
    const q = '22:00-07:00';
    expect(isQuiet(at('2026-03-28T05:30:00Z'), q, 'Europe/Berlin')).toBe(true); // 06:30 CET
    expect(isQuiet(at('2026-03-29T04:59:00Z'), q, 'Europe/Berlin')).toBe(true); // 06:59 CEST
    expect(isQuiet(at('2026-03-29T05:00:00Z'), q, 'Europe/Berlin')).toBe(false); // 07:00 CEST (06:00 had it stayed CET)
    expect(isQuiet(at('2026-03-29T20:00:00Z'), q, 'Europe/Berlin')).toBe(true); // 22:00 CEST
  });

  it('a repeated hour (New York falls back at 06:00 UTC on 2026-11-01): 01:00-02:00 is quiet both times', () => {
    const q = '01:00-02:00';
    expect(isQuiet(at('2026-11-01T05:30:00Z'), q, 'America/New_York')).toBe(true); // 01:30 EDT
    expect(isQuiet(at('2026-11-01T06:30:00Z'), q, 'America/New_York')).toBe(true); // 01:30 EST
    expect(isQuiet(at('2026-11-01T07:00:00Z'), q, 'America/New_York')).toBe(false); // 02:00 EST
    expect(localMinuteOfDay(at('2026-11-01T06:30:00Z'), 'America/New_York')).toBe(90);
  });

  it('a day range, and none', () => {
    expect(isQuiet(at('2026-12-01T12:00:00Z'), '09:00-17:00', 'UTC')).toBe(true);
    expect(isQuiet(at('2026-12-01T17:00:00Z'), '09:00-17:00', 'UTC')).toBe(false);
    expect(isQuiet(at('2026-12-01T12:00:00Z'), undefined, 'UTC')).toBe(false);
  });
});

describe('settings (portsnare.digest)', () => {
  const issues = (input: unknown): string[] => {
    const r = DigestSettingsSchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  it('defaults: every 60 minutes, 1 new block, UTC, top 10', () => {
    expect(DigestSettingsSchema.parse({})).toEqual({ everyMinutes: 60, minNewBlocks: 1, timeZone: 'UTC', chatbot: false, top: 10 });
  });
  it('refuses what cannot work, naming the key', () => {
    expect(issues({ everyMinutes: 4 })).toEqual(['everyMinutes: Too small: expected number to be >=5']);
    expect(issues({ everyMinutes: 1441 })).toEqual(['everyMinutes: Too big: expected number to be <=1440']);
    expect(issues({ webhookUrl: 'http://hooks.example.com/x' })).toEqual(['webhookUrl: must be https (got http)']);
    expect(issues({ webhookUrl: 'https://user:pw@hooks.example.com/x' })[0]).toMatch(/^webhookUrl: must not carry a user name or password/);
    expect(issues({ quietHours: '22:00-7:00' })[0]).toMatch(/^quietHours: must be "HH:MM-HH:MM"/);
    expect(issues({ quietHours: '22:00-22:00' })[0]).toMatch(/^quietHours: starts and ends at the same minute/);
    expect(issues({ timeZone: 'Mars/Olympus' })[0]).toMatch(/^timeZone: is not an IANA time zone/);
    expect(issues({ topicArn: 'arn:aws:sqs:eu-west-1:111122223333:q' })[0]).toMatch(/^topicArn: must be an SNS topic ARN/);
    expect(issues({ topicArn: 'arn:aws:sns:eu-west-1:111122223333:t', email: 'ops@example.com' })[0]).toMatch(/^email: subscribes the stack's own digest topic/);
    expect(issues({ webhookUrl: 'https://hooks.example.com/x', chatbot: true })[0]).toMatch(/^chatbot: AWS Chatbot reads an SNS topic/);
    expect(issues({ everyMinutes: 60, extra: 1 })[0]).toMatch(/^: Unrecognized key/);
  });
});

describe('the window and the content', () => {
  it('starts at the last one sent, else one period back, never more than 14 days back', () => {
    const until = at('2026-12-15T10:00:00Z');
    expect(windowStart(undefined, until, 60)).toBe(at('2026-12-15T09:00:00Z'));
    expect(windowStart(at('2026-12-15T07:00:00Z'), until, 60)).toBe(at('2026-12-15T07:00:00Z'));
    expect(windowStart(at('2026-11-01T00:00:00Z'), until, 60)).toBe(at('2026-12-01T10:00:00Z'));
  });

  it('threshold: new blocks, or any trip, failure or dead letter', () => {
    const a = new DigestAccumulator(0, 1000);
    a.add({ at: 10, action: 'block', target: '192.0.2.1', hitCount: 1, offences: 1 });
    expect(shouldSend(a.result(10), 2)).toBe(false);
    a.addMetric({ name: 'WafCapacityFull', points: [{ at: 20, value: 1 }] });
    expect(shouldSend(a.result(10), 2)).toBe(true);
    const b = new DigestAccumulator(0, 1000);
    b.addDeadLetters({ queue: 'dlq', points: [{ at: 999, value: 2 }, { at: 1000, value: 9 }] });
    expect(b.result(10).deadLetters).toEqual({ dlq: 2 });
  });

  it('the subject stays one ASCII line under 100 characters, whatever the label', () => {
    const d = new DigestAccumulator(0, 1).result(10);
    const s = subjectOf(d, `é${'x'.repeat(200)}`);
    expect(s.length).toBe(99);
    expect(s).toMatch(/^portsnare \?x+\.\.\.$/);
  });

  it('text is cut on a line boundary under its bound, saying so', () => {
    const cut = boundText(`${'line ✓\n'.repeat(1000)}`, 100);
    expect(Buffer.byteLength(cut, 'utf8')).toBeLessThanOrEqual(100);
    expect(cut).toMatch(/^line ✓\n(line ✓\n)*… \(cut: the digest was longer than the message allows\)\n$/);
    expect(renderText(new DigestAccumulator(0, 60_000).result(10), 'P')).toContain('1970-01-01T00:00:00Z to 1970-01-01T00:01:00Z');
  });
});
