/**
 * The CDK app: `npx cdk synth` / `npx cdk deploy`. Reads the `portsnare` object of the context
 * (cdk.json or `-c portsnare='{"naclIds":["acl-…"]}'`); with none, synthesizes the demo (its own
 * VPC and an EC2 decoy). With `organization`, synthesizes the decision stack and one stack per
 * enforcement plane (lib/org/, docs/organization.md; `npx cdk deploy --all`). cdk-nag's
 * AwsSolutions checks run on every synth and stop it on a finding.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parsePortsnareContext } from '../lib/appConfig';
import { addOrganizationStacks } from '../lib/org/OrganizationStacks';
import { PortsnareStack } from '../lib/PortsnareStack';

const app = new App();
const parsed = parsePortsnareContext(app.node.tryGetContext('portsnare'));
if (!parsed.ok) {
  console.error(`Invalid cdk.json context:\n${parsed.error}`);
  process.exit(1);
}
const config = parsed.value;
if (config.organization) {
  try {
    addOrganizationStacks(app, config);
  } catch (error) {
    console.error(`Invalid cdk.json context:\n${(error as Error).message}`);
    process.exit(1);
  }
} else {
  new PortsnareStack(app, config.stackName, {
    config,
    description: 'portsnare: decoy-port scanners blocked in network ACLs and AWS WAF',
    env: config.account || config.region ? { account: config.account, region: config.region } : undefined,
  });
}
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
