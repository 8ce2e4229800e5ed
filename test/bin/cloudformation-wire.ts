/**
 * CloudFormation's DescribeStacks behind the AWS Query protocol on a local HTTP port, so the REAL
 * CloudFormationClient (its serializer, XML parser, error mapping) finds the stacks the command
 * line reads. Only DescribeStacks with a StackName, as the `--stack` commands call it.
 * - request: POST /, application/x-www-form-urlencoded, Action=DescribeStacks&Version=2010-05-15&
 *   StackName=NAME, signed with Signature Version 4.
 * - response: <DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">
 *   <DescribeStacksResult><Stacks><member>… with <Outputs><member><OutputKey/><OutputValue/>,
 *   and <ResponseMetadata><RequestId/>; a stack that does not exist is a ValidationError.
 *   https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html (Examples)
 * - errors: <ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>,
 *   the Query protocol's error envelope (documented for the Query API of Amazon SQS:
 *   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-responses.html),
 *   HTTP 400 for client errors; the common errors (AccessDenied…):
 *   https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { type HttpReply, HttpFake, signedFor } from '../wire/http-fake';

const XMLNS = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';

export interface WireStack {
  readonly status?: string;
  readonly outputs: Record<string, string>;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

class QueryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export class CloudFormationWire extends HttpFake {
  readonly stacks = new Map<string, WireStack>();
  /** the next DescribeStacks calls fail with this error */
  private readonly failures: Array<{ code: string; message: string; status: number }> = [];

  failNext(code: string, message: string, status = 400): void {
    this.failures.push({ code, message, status });
  }

  /** A real CloudFormationClient pointed at this server. */
  client(region = 'eu-west-1'): CloudFormationClient {
    return new CloudFormationClient({ region, endpoint: this.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }, maxAttempts: 1 });
  }

  protected serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply } {
    const params = new URLSearchParams(body);
    const action = params.get('Action') ?? '';
    try {
      if (!signedFor(request, 'cloudformation')) throw new QueryError('IncompleteSignature', 'The request signature does not conform to AWS standards.');
      if (request.method !== 'POST' || !String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
        throw new QueryError('MalformedQueryString', 'expected a form-encoded POST');
      }
      if (params.get('Version') !== '2010-05-15') throw new QueryError('InvalidParameterValue', `unsupported Version ${params.get('Version')}`);
      if (action !== 'DescribeStacks') throw new QueryError('InvalidAction', `The action ${action} is not valid for this web service.`);
      const failure = this.failures.shift();
      if (failure) throw new QueryError(failure.code, failure.message, failure.status);
      const name = params.get('StackName');
      if (!name) throw new QueryError('ValidationError', 'this fake answers DescribeStacks for one StackName only');
      const stack = this.stacks.get(name);
      if (!stack) throw new QueryError('ValidationError', `Stack with id ${name} does not exist`);
      const outputs = Object.entries(stack.outputs)
        .map(([key, value]) => `<member><OutputKey>${escape(key)}</OutputKey><OutputValue>${escape(value)}</OutputValue></member>`)
        .join('');
      const xml =
        `<DescribeStacksResponse xmlns="${XMLNS}"><DescribeStacksResult><Stacks><member>` +
        `<StackName>${escape(name)}</StackName><StackId>arn:aws:cloudformation:eu-west-1:111111111111:stack/${escape(name)}/0000</StackId>` +
        `<CreationTime>2026-11-01T00:00:00Z</CreationTime><StackStatus>${escape(stack.status ?? 'CREATE_COMPLETE')}</StackStatus>` +
        `<DisableRollback>false</DisableRollback><Outputs>${outputs}</Outputs>` +
        `</member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeStacksResponse>`;
      return { op: action, reply: { status: 200, headers: { 'content-type': 'text/xml' }, body: xml } };
    } catch (error) {
      const { code, message, status } = error instanceof QueryError ? error : { code: 'FakeDefect', message: String(error), status: 500 };
      const xml = `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${escape(code)}</Code><Message>${escape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
      return { op: action, reply: { status, headers: { 'content-type': 'text/xml' }, body: xml } };
    }
  }
}
