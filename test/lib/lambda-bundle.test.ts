/**
 * The enforce function as it ships: the bundle scripts/bundle-lambda.ts writes (the one
 * lib/PortsnareFunction.ts deploys), run in a child process with nothing but the bundle, and its
 * `handler` invoked as Lambda would, against dynalite and the EC2 and WAFv2 wire fakes (the SDK's
 * own AWS_ENDPOINT_URL_<SERVICE> variables point the bundled clients at them). It proves the
 * bundle's plugins (scripts/esbuild-plugins.ts) left every SDK schema the function's calls need:
 * a schema dropped by mistake fails the serialization of DescribeNetworkAcls,
 * CreateNetworkAclEntry, GetIPSet or UpdateIPSet, and the entries and addresses below are missing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decide } from '../../core/policy';
import { interpretEvent } from '../../core/intake';
import { BlockRepository } from '../../aws/repository';
import { buildLambdaBundle, LAMBDA_BUNDLE_FILE, type LambdaBundleResult } from '../../scripts/bundle-lambda';
import { SimClock } from '../fakes/clock';
import { FakeEc2 } from '../fakes/ec2';
import { scanDetectedEvent } from '../fakes/events';
import { ACL_A, ACL_B, SET_V4, testSettings } from '../fakes/world';
import { type LocalTable, startDynalite } from '../wire/dynalite';
import { Ec2Server } from '../wire/ec2-server';
import { WafServer } from '../wire/wafv2-server';

const ROOT = join(__dirname, '..', '..');
const settings = testSettings();
const ec2 = new Ec2Server(new FakeEc2(settings.nacl.quotaPerDirection, () => 0.5));
const waf = new WafServer(new SimClock(), () => 0.5);
let table: LocalTable;
let out: string;
let built: LambdaBundleResult;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'portsnare-lambda-bundle-'));
  built = await buildLambdaBundle(ROOT, 'enforce', out);
  table = await startDynalite();
  for (const aclId of settings.nacl.aclIds) ec2.ec2.addAcl(aclId, { ipv6: true });
  for (const ref of settings.waf.sets) waf.waf.addSet(ref);
  await ec2.start();
  await waf.start();
}, 120_000);

afterAll(async () => {
  await ec2.stop();
  await waf.stop();
  await table?.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

/** Bytes of the bundle that came from inputs matching `pattern`. */
function bytesFrom(pattern: RegExp): number {
  const output = Object.values(built.metafile.outputs).find((o) => o.entryPoint !== undefined)!;
  return Object.entries(output.inputs)
    .filter(([input]) => pattern.test(input))
    .reduce((sum, [, v]) => sum + v.bytesInOutput, 0);
}

describe('the enforce bundle (scripts/bundle-lambda.ts)', () => {
  it("leaves out zod's translations and the EC2 schemas the function never uses", () => {
    expect(bytesFrom(/zod[\\/]v4[\\/]locales[\\/](?!en\.js)/)).toBe(0);
    expect(bytesFrom(/zod[\\/]v4[\\/]locales[\\/]en\.js/)).toBeGreaterThan(0);
    expect(built.schemaKeys).toBeGreaterThan(1000);
    // 541 KB with every EC2 schema kept; the four NACL calls need a few KB
    expect(bytesFrom(/client-ec2[\\/]dist-es[\\/]schemas/)).toBeLessThan(50 * 1024);
  });

  it('runs as Lambda runs it: the scanner is denied in both ACLs and in the IP set', async () => {
    const now = Date.now();
    const intake = interpretEvent(scanDetectedEvent({ id: 'bundle-1', sensorId: 'i-0123456789abcdef0', attacker: '203.0.113.77', at: now }), now);
    if (intake.kind !== 'sightings') throw new Error(`not accepted: ${JSON.stringify(intake)}`);
    const decision = decide(undefined, intake.sightings[0]!, now, settings.policy);
    if (decision.action === 'ignore') throw new Error('not blocked by the policy');
    expect(await new BlockRepository(table.doc, table.tableName).save(decision.record, undefined, now)).toBe(true);

    const script = `
      const { handler } = require(${JSON.stringify(join(out, LAMBDA_BUNDLE_FILE))});
      const event = { Records: [{ messageId: 'm-1', receiptHandle: 'r-1', body: '{"kind":"reconcile"}', eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:portsnare-enforce.fifo' }] };
      const context = { awsRequestId: 'req-1', functionName: 'enforce', getRemainingTimeInMillis: () => 60000 };
      handler(event, context).then((summary) => { process.stdout.write('\\nSUMMARY ' + JSON.stringify(summary) + '\\n'); }, (error) => { process.stderr.write(String(error && error.stack || error)); process.exit(1); });`;
    // asynchronously: the fakes answer from this process's event loop
    const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['-e', script], {
      cwd: tmpdir(),
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '',
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'AKIDTEST',
        AWS_SECRET_ACCESS_KEY: 'test-secret',
        AWS_ENDPOINT_URL_DYNAMODB: table.endpoint,
        AWS_ENDPOINT_URL_EC2: ec2.endpoint,
        AWS_ENDPOINT_URL_WAFV2: waf.endpoint,
        AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9',
        TABLE_NAME: table.tableName,
        PORTSNARE_SETTINGS: JSON.stringify(settings),
        POWERTOOLS_METRICS_NAMESPACE: 'Portsnare',
        POWERTOOLS_SERVICE_NAME: 'portsnare',
      },
      }, (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
    });
    expect(run.status, run.stderr).toBe(0);
    // the function's own log lines (Powertools, JSON) come first
    const summary = run.stdout.split('\n').find((line) => line.startsWith('SUMMARY '));
    expect(summary, run.stdout).toBeDefined();
    expect(JSON.parse(summary!.slice('SUMMARY '.length))).toMatchObject({ converged: true, failures: [] });
    for (const aclId of [ACL_A, ACL_B]) {
      expect(ec2.ec2.entries(aclId).filter((e) => !e.Egress && e.RuleAction === 'deny' && e.CidrBlock === '203.0.113.77/32')).toHaveLength(1);
    }
    expect(waf.waf.addresses(SET_V4)).toContain('203.0.113.77/32');
  }, 90_000);
});
