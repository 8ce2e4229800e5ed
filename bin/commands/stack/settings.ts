/**
 * The settings a deployed stack runs with, read from its `PortsnareSettings` output: the same
 * PORTSNARE_SETTINGS document the functions get (core/settings.ts), with CloudFormation's tokens
 * (the VPC's CIDR, its default ACL, the IP set ids) already resolved by CloudFormation. A stack
 * without the output, or with one that does not parse, is an error, never the defaults.
 */
import type { Stack } from '@aws-sdk/client-cloudformation';
import { STACK_OUTPUTS } from '../../../core/outputs';
import { type PipelineSettings, PipelineSettingsSchema } from '../../../core/settings';
import { CliError, EXIT } from '../errors';
import { messageOf } from './aws-errors';

/** The value of one output of a described stack. */
export function stackOutput(stack: Stack, key: string): string | undefined {
  return stack.Outputs?.find((output) => output.OutputKey === key)?.OutputValue;
}

export function settingsOfStack(stack: Stack, stackName: string): PipelineSettings {
  const key = STACK_OUTPUTS.settings;
  const text = stackOutput(stack, key);
  if (text === undefined) {
    throw new CliError(`stack ${stackName} has no output ${key}: deploy this version of portsnare (its output carries the guard, the NACL settings and the burst limit)`, EXIT.notFound);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new CliError(`stack ${stackName} output ${key} is not JSON: ${messageOf(error)}`, EXIT.failure);
  }
  const parsed = PipelineSettingsSchema.safeParse(document);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.message}`).join('; ');
    throw new CliError(`stack ${stackName} output ${key} is not valid portsnare settings: ${issues}`, EXIT.failure);
  }
  return parsed.data;
}
