/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy`. Reads the `portsnare` object of the context
 * (cdk.json or `-c portsnare='{"naclIds":["acl-…"]}'`); with none, synthesizes the demo (its own
 * VPC and an EC2 decoy). cdk-nag's AwsSolutions checks run on every synth and stop it on a finding.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parsePortsnareContext } from '../lib/appConfig';
import { PortsnareStack } from '../lib/PortsnareStack';

const app = new App();
const parsed = parsePortsnareContext(app.node.tryGetContext('portsnare'));
if (!parsed.ok) {
  console.error(`Invalid cdk.json context:\n${parsed.error}`);
  process.exit(1);
}
const config = parsed.value;
new PortsnareStack(app, config.stackName, {
  config,
  description: 'portsnare: decoy-port scanners blocked in network ACLs and AWS WAF',
  env: config.account || config.region ? { account: config.account, region: config.region } : undefined,
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
