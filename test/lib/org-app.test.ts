/**
 * The README's organization example as a user runs it: `npx cdk synth -c portsnare="$(tr -d
 * '\n' < examples/cdk/organization.json)"` (the CLI keeps a -c value only up to its first newline:
 * aws-cdk's parseStringContextListToObject splits on /=(.*)/), offline, with cdk-nag and CloudFormation's template validation
 * as plugins (a finding fails the synthesis): the decision stack and one stack per plane.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../lib';

const run = promisify(execFile);
const outdir = mkdtempSync(path.join(tmpdir(), 'portsnare-org-synth-'));
const bin = (name: string) => path.join(PROJECT_ROOT, 'node_modules', '.bin', name);
const example = readFileSync(path.join(PROJECT_ROOT, 'examples', 'cdk', 'organization.json'), 'utf8');
const env = { ...process.env, CDK_DISABLE_VERSION_CHECK: '1', CDK_DISABLE_CLI_TELEMETRY: 'true', CDK_VALIDATION: 'true', AWS_EC2_METADATA_DISABLED: 'true' };

afterAll(() => rmSync(outdir, { recursive: true, force: true }));

interface ValidationReport {
  pluginReports: Array<{ pluginName: string; violations: unknown[] }>;
}
type TemplateJson = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>; Outputs?: Record<string, { Value: unknown }> };

describe('npx cdk synth with examples/cdk/organization.json', () => {
  it('synthesizes the decision stack and every plane stack with zero unacknowledged findings', async () => {
    const { stderr } = await run(bin('cdk'), ['synth', '--quiet', '--no-notices', '--output', outdir, '-c', `portsnare=${example.replace(/\n/g, '')}`], { cwd: PROJECT_ROOT, env, timeout: 420_000 });
    expect(stderr).not.toMatch(/\[Error|AwsSolutions-/);
    const planes = (JSON.parse(example) as { organization: { planes: Array<{ account: string; region: string }> } }).organization.planes;
    const read = (name: string): TemplateJson => JSON.parse(readFileSync(path.join(outdir, `${name}.template.json`), 'utf8')) as TemplateJson;
    const decision = read('Portsnare-decision');
    const types = new Set(Object.values(decision.Resources).map((r) => r.Type));
    for (const type of ['AWS::Events::EventBus', 'AWS::DynamoDB::Table', 'AWS::Pipes::Pipe', 'AWS::Events::Rule']) expect(types).toContain(type);
    expect(types).not.toContain('AWS::WAFv2::IPSet');
    expect(JSON.parse(decision.Outputs!.PortsnarePlanes!.Value as string)).toEqual(planes.map((p) => `${p.account}/${p.region}`));
    for (const plane of planes) {
      const template = read(`Portsnare-plane-${plane.account}-${plane.region}`);
      const planeTypes = Object.values(template.Resources).map((r) => r.Type);
      expect(planeTypes).toContain('AWS::Events::EventBus');
      expect(planeTypes).toContain('AWS::Scheduler::Schedule');
      expect(planeTypes.filter((t) => t === 'AWS::Lambda::Function').length).toBeGreaterThanOrEqual(3);
      expect(planeTypes.includes('AWS::FMS::Policy')).toBe(plane.account === '111111111111');
    }
    const report = JSON.parse(readFileSync(path.join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
    for (const plugin of report.pluginReports) expect({ plugin: plugin.pluginName, violations: plugin.violations }).toEqual({ plugin: plugin.pluginName, violations: [] });
  }, 480_000);

  it('stops with the key and the value at fault when the organization is invalid', async () => {
    const bad = JSON.parse(example) as { organization: { planes: Array<Record<string, unknown>> } };
    bad.organization.planes[0] = { ...bad.organization.planes[0], cloudfront: true };
    const failure = await run(bin('tsx'), [path.join(PROJECT_ROOT, 'bin', 'app.ts')], {
      cwd: PROJECT_ROOT,
      env: { ...env, CDK_CONTEXT_JSON: JSON.stringify({ portsnare: bad }), CDK_OUTDIR: outdir },
      timeout: 60_000,
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/portsnare\.organization\.planes\.0\.cloudfront: CLOUDFRONT IP sets exist only in us-east-1, and this plane's region is "eu-west-1"/);
  }, 60_000);
});
