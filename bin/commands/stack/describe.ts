/**
 * Finds a stack by name with DescribeStacks: the one place the command line maps CloudFormation's
 * "does not exist" (a ValidationError, API Reference DescribeStacks:
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html) to
 * exit 4, with the stack and Region named.
 */
import { DescribeStacksCommand, type Stack } from '@aws-sdk/client-cloudformation';
import { errorName } from '../../../aws/retry';
import { CliError, EXIT } from '../errors';
import { awsError, messageOf } from './aws-errors';
import type { CloudClients } from './clients';

export async function describeStack(clients: Pick<CloudClients, 'cloudFormation'>, stackName: string, region: string): Promise<Stack> {
  let stack: Stack | undefined;
  try {
    const answer = await clients.cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    stack = answer.Stacks?.[0];
  } catch (error) {
    if (errorName(error) === 'ValidationError' && /does not exist/i.test(messageOf(error))) {
      throw new CliError(`unknown stack ${JSON.stringify(stackName)} in ${region}: no such CloudFormation stack (check --stack and --region / AWS_REGION)`, EXIT.notFound);
    }
    throw awsError(error, `describe stack ${stackName}`);
  }
  if (!stack) throw new CliError(`unknown stack ${JSON.stringify(stackName)} in ${region}`, EXIT.notFound);
  return stack;
}

/** Whether a stack's status is a finished, good one (`*_COMPLETE`, neither a rollback nor a delete). */
export function stackStatusHealthy(status: string): boolean {
  return /_COMPLETE$/.test(status) && !/ROLLBACK|DELETE/.test(status);
}
