/** A Lambda context as the Node.js runtime hands it to a handler, for tests. */
import type { Context } from 'aws-lambda';

export function lambdaContext(options: { requestId?: string; functionName?: string; remainingMs?: () => number } = {}): Context {
  const functionName = options.functionName ?? 'portsnare-test';
  const unused = (): never => {
    throw new Error('deprecated Context callback used');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: options.requestId ?? 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/11/21/[$LATEST]0123456789abcdef0123456789abcdef',
    getRemainingTimeInMillis: options.remainingMs ?? (() => 30_000),
    done: unused,
    fail: unused,
    succeed: unused,
  };
}
