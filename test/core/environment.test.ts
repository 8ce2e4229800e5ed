/**
 * core/environment.ts, the functions' environment contract: what lib/ sets is what lambda/ reads.
 * The names are written out here (a renamed variable must fail this test and the template tests).
 */
import { describe, expect, it } from 'vitest';
import { enforceEnvironmentOf, functionEnvironment, ledgerTableOf, requireEnv } from '../../core/environment';

describe('functionEnvironment (lib)', () => {
  it('names each value as the functions read it, and leaves out what is not given', () => {
    expect(functionEnvironment({ settings: '{}', table: 't', enforceQueueUrl: 'https://q' })).toEqual({ PORTSNARE_SETTINGS: '{}', TABLE_NAME: 't', ENFORCE_QUEUE_URL: 'https://q' });
    expect(functionEnvironment({ settings: '{}', table: 'arn:decision', ledgerTable: 'ledger', planeId: '111122223333/eu-west-1', reportsTable: 'arn:reports' })).toEqual({
      PORTSNARE_SETTINGS: '{}',
      TABLE_NAME: 'arn:decision',
      LEDGER_TABLE_NAME: 'ledger',
      PLANE_ID: '111122223333/eu-west-1',
      REPORTS_TABLE_NAME: 'arn:reports',
    });
  });

  it('refuses a plane id without its reports table (and the reverse)', () => {
    expect(() => functionEnvironment({ settings: '{}', table: 't', planeId: '111122223333/eu-west-1' })).toThrow(/PLANE_ID and REPORTS_TABLE_NAME go together/);
    expect(() => functionEnvironment({ settings: '{}', table: 't', reportsTable: 'r' })).toThrow(/PLANE_ID and REPORTS_TABLE_NAME go together/);
  });
});

describe('reading it (lambda)', () => {
  it('reads back what lib wrote, for a single-account enforce and a plane\'s', () => {
    expect(enforceEnvironmentOf(functionEnvironment({ settings: '{}', table: 't' }))).toEqual({ table: 't', ledgerTable: 't' });
    expect(enforceEnvironmentOf(functionEnvironment({ settings: '{}', table: 'arn:decision', ledgerTable: 'ledger', planeId: 'p', reportsTable: 'arn:reports', enforceQueueUrl: 'https://q' }))).toEqual({
      table: 'arn:decision',
      ledgerTable: 'ledger',
      enforceQueueUrl: 'https://q',
      plane: { id: 'p', reportsTable: 'arn:reports' },
    });
  });

  it('names the variable that is missing or empty', () => {
    expect(() => enforceEnvironmentOf({})).toThrow('environment variable TABLE_NAME is not set');
    expect(() => enforceEnvironmentOf({ TABLE_NAME: 't', PLANE_ID: 'p' })).toThrow('environment variable REPORTS_TABLE_NAME is not set');
    expect(() => requireEnv('ENFORCE_QUEUE_URL', { ENFORCE_QUEUE_URL: '' })).toThrow('environment variable ENFORCE_QUEUE_URL is not set');
  });

  it('cleanup keeps its ledger in LEDGER_TABLE_NAME, else TABLE_NAME', () => {
    expect(ledgerTableOf({ TABLE_NAME: 't', LEDGER_TABLE_NAME: 'l' })).toBe('l');
    expect(ledgerTableOf({ TABLE_NAME: 't', LEDGER_TABLE_NAME: '' })).toBe('t');
    expect(ledgerTableOf({})).toBeUndefined();
  });
});
