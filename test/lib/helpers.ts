/** Helpers for the CDK template tests: one synthesis per test file, read many times. */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PROJECT_ROOT } from '../../lib';

type Json = Record<string, unknown>;

/** Every resource of `type` in the template, by logical id. */
export function resourcesOf(template: Template, type: string): Array<[string, Json]> {
  return Object.entries(template.findResources(type)) as Array<[string, Json]>;
}

/** A CloudFormation value with intrinsic functions flattened to text; references become `«LogicalId»`. */
export function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(flatten).join(',');
  const object = value as Json;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map(flatten).join(separator);
  }
  if ('Ref' in object) return `«${String(object.Ref)}»`;
  if ('Fn::GetAtt' in object) return `«${(object['Fn::GetAtt'] as string[]).join('.')}»`;
  if ('Fn::Sub' in object) return String(object['Fn::Sub']);
  if ('Fn::Select' in object) return '«select»';
  return JSON.stringify(object);
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Sid?: string;
}

/** The statements of every inline policy attached to the role `roleLogicalIdPrefix…`. */
export function statementsOfRole(template: Template, roleLogicalIdPrefix: string): Statement[] {
  const statements: Statement[] = [];
  for (const [, policy] of resourcesOf(template, 'AWS::IAM::Policy')) {
    const props = policy.Properties as { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Statement[] } };
    if (props.Roles.some((r) => r.Ref.startsWith(roleLogicalIdPrefix))) statements.push(...props.PolicyDocument.Statement);
  }
  return statements;
}

export function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

export function resourceList(statement: Statement): string[] {
  return (Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource]).map(flatten);
}

/** Every allowed (action, resource) pair of every inline policy in the template. */
export function allGrants(template: Template): Array<{ action: string; resource: string; policy: string }> {
  const grants: Array<{ action: string; resource: string; policy: string }> = [];
  for (const [id, policy] of resourcesOf(template, 'AWS::IAM::Policy')) {
    const doc = (policy.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument;
    for (const statement of doc.Statement) {
      if (statement.Effect !== 'Allow') continue;
      for (const action of actionsOf(statement)) for (const resource of resourceList(statement)) grants.push({ action, resource, policy: id });
    }
  }
  return grants;
}

/** cdk-nag AwsSolutions findings that were not acknowledged, as "rule at path" lines. */
export function nagFindings(app: App): string[] {
  const report = new AwsSolutionsChecks().validateScope(app);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}`));
}

/** An App with the feature flags of cdk.json, so tests see the templates `cdk synth` writes. */
export function projectApp(): App {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  const flags = Object.fromEntries(Object.entries(cdkJson.context ?? {}).filter(([key]) => key !== 'portsnare'));
  return new App({ context: flags });
}
