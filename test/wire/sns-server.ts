/**
 * Amazon SNS Publish behind the Query API on a local HTTP port, for `portsnare selftest`'s alarm
 * topic check (bin/commands/stack/selftest.ts, through @aws-sdk/client-sns). What it holds the request to, and how it answers, from
 * the Amazon SNS API Reference:
 * - "Publish" (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html): Message is required
 *   (at most 256 KB); Subject, when given, is ASCII, starts with a letter, number or punctuation
 *   mark, has no line break or control character and is under 100 characters; TopicArn names the
 *   topic; a topic that does not exist is NotFound (404); a caller not allowed is
 *   AuthorizationError (403); a bad parameter is InvalidParameter (400).
 *   Response: <PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>
 *   <MessageId>…</MessageId></PublishResult><ResponseMetadata><RequestId>…</RequestId>
 *   </ResponseMetadata></PublishResponse> (the page's example).
 *   MessageStructure "json" (same page): "the value of the Message parameter must: be a
 *   syntactically valid JSON object; and contain at least a top-level JSON key of "default" with a
 *   value that is a string"; any other MessageStructure value is InvalidParameter.
 * - "Common Parameters" (https://docs.aws.amazon.com/sns/latest/api/CommonParameters.html):
 *   Action and Version (2010-03-31), signed with Signature Version 4 (service "sns").
 * - Errors (https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html): the Query envelope
 *   <ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type HttpReply, HttpFake, signedFor } from './http-fake';

const XMLNS = 'https://sns.amazonaws.com/doc/2010-03-31/';
const MAX_MESSAGE_BYTES = 256 * 1024;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

class QueryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface PublishedMessage {
  readonly topicArn: string;
  readonly subject?: string;
  readonly message: string;
  readonly messageId: string;
  readonly messageStructure?: string;
}

export class SnsWire extends HttpFake {
  /** topic ARN → whether it accepts this caller's publishes (false: AuthorizationError, as a topic policy without the caller's Allow) */
  readonly topics = new Map<string, { allowsCaller: boolean }>();
  readonly published: PublishedMessage[] = [];

  reset(): void {
    this.topics.clear();
    this.published.length = 0;
    this.requests.length = 0;
  }

  protected serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply } {
    const params = new URLSearchParams(body);
    const action = params.get('Action') ?? '';
    try {
      if (!signedFor(request, 'sns')) throw new QueryError('InvalidClientTokenId', 'The security token included in the request is invalid.', 403);
      if (request.method !== 'POST' || !String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) throw new QueryError('MalformedQueryString', 'expected a form-encoded POST', 400);
      if (params.get('Version') !== '2010-03-31') throw new QueryError('InvalidParameter', `unsupported Version ${params.get('Version')}`, 400);
      if (action !== 'Publish') throw new QueryError('InvalidAction', `The action ${action} is not valid for this web service.`, 400);
      const topicArn = params.get('TopicArn');
      const message = params.get('Message');
      const subject = params.get('Subject') ?? undefined;
      if (!topicArn) throw new QueryError('InvalidParameter', 'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter', 400);
      if (message === null || message === '') throw new QueryError('InvalidParameter', 'Invalid parameter: Message Reason: Empty message', 400);
      if (Buffer.byteLength(message, 'utf8') > MAX_MESSAGE_BYTES) throw new QueryError('InvalidParameter', 'Invalid parameter: Message too long', 400);
      if (subject !== undefined && (subject.length >= 100 || !/^[\x21-\x7e][\x20-\x7e]*$/.test(subject))) {
        throw new QueryError('InvalidParameter', 'Invalid parameter: Subject', 400);
      }
      const structure = params.get('MessageStructure') ?? undefined;
      if (structure !== undefined) {
        if (structure !== 'json') throw new QueryError('InvalidParameter', 'Invalid parameter: MessageStructure', 400);
        let parsed: unknown;
        try {
          parsed = JSON.parse(message);
        } catch {
          throw new QueryError('InvalidParameter', 'Invalid parameter: Message Structure - JSON message body failed to parse', 400);
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof (parsed as Record<string, unknown>).default !== 'string') {
          throw new QueryError('InvalidParameter', 'Invalid parameter: Message Structure - No default entry in JSON message body', 400);
        }
      }
      const topic = this.topics.get(topicArn);
      if (!topic) throw new QueryError('NotFound', 'Topic does not exist', 404);
      if (!topic.allowsCaller) throw new QueryError('AuthorizationError', `User: arn:aws:iam::111122223333:user/ops is not authorized to perform: SNS:Publish on resource: ${topicArn}`, 403);
      const messageId = randomUUID();
      this.published.push({ topicArn, message, messageId, ...(subject !== undefined ? { subject } : {}), ...(structure !== undefined ? { messageStructure: structure } : {}) });
      const xml = `<PublishResponse xmlns="${XMLNS}"><PublishResult><MessageId>${messageId}</MessageId></PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`;
      return { op: action, reply: { status: 200, headers: { 'content-type': 'text/xml' }, body: xml } };
    } catch (error) {
      const { code, message, status } = error instanceof QueryError ? error : { code: 'FakeDefect', message: String(error), status: 500 };
      const xml = `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${escape(code)}</Code><Message>${escape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
      return { op: action, reply: { status, headers: { 'content-type': 'text/xml' }, body: xml } };
    }
  }
}
