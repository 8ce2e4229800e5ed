/**
 * AWS SDK errors as one-line operator messages with the exit code each deserves. The error's
 * AWS name is always in the message, with what was being read or written, so a denied or
 * throttled call is never mistaken for an empty answer.
 * https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
 */
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { errorName, isThrottling } from '../../../aws/retry';
import { CliError, EXIT } from '../errors';

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const CREDENTIALS_HELP =
  'set AWS_PROFILE to a profile in ~/.aws/config (then `aws sso login` if it uses SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials), or run where an instance or task role applies';

const REJECTED_CREDENTIALS = /^(ExpiredToken(Exception)?|UnrecognizedClientException|InvalidClientTokenId|InvalidSignatureException|TokenRefreshRequired)$/;

/** AWS refused the caller: the credentials lack a permission (IAM or a resource policy). */
export function isAccessDenied(error: unknown): boolean {
  return /AccessDenied|UnauthorizedOperation|AccessDeniedException/.test(errorName(error) ?? '');
}

/** An error that must fail the command rather than be shown as "unknown": denied or throttled. */
export function mustFail(error: unknown): boolean {
  return error instanceof CliError || isAccessDenied(error) || isThrottling(error) || isCredentialsError(error);
}

function isCredentialsError(error: unknown): boolean {
  const name = errorName(error) ?? '';
  return name === 'CredentialsProviderError' || REJECTED_CREDENTIALS.test(name) || /could not load credentials/i.test(messageOf(error));
}

/** An AWS SDK error as a CliError; `what` names the call and the resource ("read the IP set waf:NAME"). */
export function awsError(error: unknown, what: string): CliError {
  if (error instanceof CliError) return error;
  const name = errorName(error) ?? '';
  const message = messageOf(error);
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return new CliError(`no AWS credentials (${what}): ${CREDENTIALS_HELP}`, EXIT.credentials);
  }
  if (/region is missing/i.test(message)) {
    return new CliError('no AWS Region: pass --region REGION or set AWS_REGION', EXIT.credentials);
  }
  if (REJECTED_CREDENTIALS.test(name)) {
    return new CliError(`AWS rejected the credentials (${name}: ${message}) while trying to ${what}: ${CREDENTIALS_HELP}`, EXIT.credentials);
  }
  if (isAccessDenied(error)) {
    return new CliError(`AWS denied ${what} (${name}): ${message}`, EXIT.failure);
  }
  if (isThrottling(error)) {
    return new CliError(`AWS throttled ${what} (${name}) after the SDK's retries: ${message}; try again in a minute`, EXIT.failure);
  }
  if (name === 'ResourceNotFoundException') {
    return new CliError(`cannot ${what}: ${name}: ${message} (was the stack's table deleted?)`, EXIT.notFound);
  }
  return new CliError(`cannot ${what}: ${name ? `${name}: ` : ''}${message}`, EXIT.failure);
}

/** Runs one AWS call; its error becomes the operator's message. */
export async function send<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw awsError(error, what);
  }
}

/** The Region the clients use; a clear error when none is configured. */
export async function regionOf(client: CloudFormationClient): Promise<string> {
  let region: string | undefined;
  try {
    region = await client.config.region();
  } catch (error) {
    throw new CliError(`no AWS Region: pass --region REGION or set AWS_REGION (or a region in the AWS_PROFILE profile); the SDK said: ${messageOf(error)}`, EXIT.credentials);
  }
  if (region) return region;
  throw new CliError('no AWS Region: pass --region REGION or set AWS_REGION (or a region in the AWS_PROFILE profile)', EXIT.credentials);
}
