/**
 * The findings function as it ships: the bundle scripts/bundle-lambda.ts writes for
 * lambda/findings, run in a child process with nothing but the bundle and its `handler` invoked
 * as Lambda would, against dynalite and the Security Hub wire fake (the SDK's own
 * AWS_ENDPOINT_URL_<SERVICE> variables point the bundled clients at them). It proves the bundle's
 * plugins (scripts/esbuild-plugins.ts) kept every Security Hub schema BatchImportFindings needs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findingId } from '../../core/findings';
import { BlockRepository } from '../../aws/repository';
import { buildLambdaBundle, LAMBDA_BUNDLE_FILE } from '../../scripts/bundle-lambda';
import { type LocalTable, startDynalite } from '../wire/dynalite';
import { SecurityHubServer } from '../wire/securityhub-server';

const ROOT = join(__dirname, '..', '..');
const hub = new SecurityHubServer('123456789012', 'eu-west-1');
let table: LocalTable;
let out: string;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'portsnare-findings-bundle-'));
  await buildLambdaBundle(ROOT, 'findings', out);
  table = await startDynalite();
  await hub.start();
}, 120_000);

afterAll(async () => {
  await hub.stop();
  await table?.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('the findings bundle', () => {
  it('imports the active blocks into Security Hub as Lambda runs it', async () => {
    const now = Date.now();
    const record = { target: '203.0.113.77', family: 'ipv4', reason: 'sensor', firstSeen: now - 1000, lastSeen: now, hitCount: 2, offences: 1, blockedAt: now, expiresAt: now + 3_600_000, active: true, eventIds: ['e'], sensors: ['s'] } as const;
    expect(await new BlockRepository(table.doc, table.tableName).save(record, undefined, now)).toBe(true);
    const script = `
      const { handler } = require(${JSON.stringify(join(out, LAMBDA_BUNDLE_FILE))});
      const context = { awsRequestId: 'req-1', functionName: 'findings', getRemainingTimeInMillis: () => 60000 };
      handler({}, context).then((summary) => { process.stdout.write('\\nSUMMARY ' + JSON.stringify(summary) + '\\n'); }, (error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); });`;
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['-e', script],
        {
          cwd: tmpdir(),
          encoding: 'utf8',
          timeout: 60_000,
          env: {
            PATH: process.env.PATH ?? '',
            AWS_REGION: 'eu-west-1',
            AWS_ACCESS_KEY_ID: 'AKIDTEST',
            AWS_SECRET_ACCESS_KEY: 'test-secret',
            AWS_ENDPOINT_URL_DYNAMODB: table.endpoint,
            AWS_ENDPOINT_URL_SECURITYHUB: hub.endpoint,
            TABLE_NAME: table.tableName,
            FINDINGS_PRODUCT_ARN: hub.productArn,
            POWERTOOLS_METRICS_NAMESPACE: 'Portsnare',
            POWERTOOLS_SERVICE_NAME: 'portsnare',
          },
        },
        (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
      );
    });
    expect(run.status, run.stderr).toBe(0);
    const summary = run.stdout.split('\n').find((line) => line.startsWith('SUMMARY '));
    expect(summary, run.stdout).toBeDefined();
    expect(JSON.parse(summary!.slice('SUMMARY '.length))).toMatchObject({ mode: 'initial', read: 1, imported: 1, failed: 0 });
    expect(hub.findings.get(findingId(table.tableName, '203.0.113.77'))).toMatchObject({ recordState: 'ACTIVE', severity: 'LOW' });
  }, 90_000);
});
