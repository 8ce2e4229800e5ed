/**
 * The CDK app as a user runs it: `npx cdk synth` on the repository, offline, with cdk-nag and
 * CloudFormation's template validation as plugins (a finding fails the synthesis).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib';

const run = promisify(execFile);
const outdir = mkdtempSync(path.join(tmpdir(), 'portsnare-synth-'));
const bin = (name: string) => path.join(PROJECT_ROOT, 'node_modules', '.bin', name);

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

interface ValidationReport {
  pluginReports: Array<{ pluginName: string; conclusion: string; violations: unknown[] }>;
}

describe('npx cdk synth', () => {
  it('synthesizes the demo offline with zero unacknowledged cdk-nag or CloudFormation findings', async () => {
    const { stderr } = await run(bin('cdk'), ['synth', '--quiet', '--no-notices', '--output', outdir], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_VALIDATION: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
      timeout: 170_000,
    });
    expect(stderr).not.toMatch(/\[Error|AwsSolutions-/);
    const template = JSON.parse(readFileSync(path.join(outdir, 'Portsnare.template.json'), 'utf8')) as { Resources: Record<string, { Type: string }>; Outputs: Record<string, unknown> };
    const types = new Set(Object.values(template.Resources).map((r) => r.Type));
    for (const type of ['AWS::Events::EventBus', 'AWS::DynamoDB::Table', 'AWS::WAFv2::IPSet', 'AWS::WAFv2::RuleGroup', 'AWS::EC2::Instance', 'AWS::Scheduler::Schedule']) {
      expect(types).toContain(type);
    }
    expect(Object.keys(template.Outputs)).toEqual(expect.arrayContaining(['PortsnareTableName', 'PortsnareEventBusName', 'PortsnareEventBusArn', 'PortsnareIpSetArns', 'PortsnareRuleGroupArn', 'PortsnareSettings']));
    const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
    for (const plugin of report.pluginReports) expect({ plugin: plugin.pluginName, violations: plugin.violations }).toEqual({ plugin: plugin.pluginName, violations: [] });
    // A plugin without findings may be left out of the report; a finding would have failed the
    // synthesis above (test/lib/PortsnareStack.test.ts runs the same checks on the same stack).
  }, 180_000);

  it('stops with the context key at fault when the portsnare context is invalid', async () => {
    const failure = await run(bin('tsx'), [path.join(PROJECT_ROOT, 'bin', 'app.ts')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ portsnare: { naclQuota: 'many', sensor: { type: 'lambda' } } }), CDK_OUTDIR: outdir },
      timeout: 60_000,
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/portsnare\.naclQuota: Invalid input: expected number/);
    expect(failure?.stderr).toMatch(/portsnare\.sensor\.type: Invalid option/);
  }, 60_000);
});
