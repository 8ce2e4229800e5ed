/**
 * Amazon SNS Publish over the Query API, for `portsnare selftest` (no SNS client is among the
 * project's dependencies): a form-encoded POST signed with Signature Version 4 by the SDK's own
 * signer (@smithy/signature-v4, which every @aws-sdk client ships with), with the caller's
 * credentials from an SDK client's resolved config (the default provider chain).
 *
 * From the Amazon SNS API Reference, "Publish"
 * (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html) and "Common Parameters"
 * (https://docs.aws.amazon.com/sns/latest/api/CommonParameters.html):
 * - request: POST https://sns.<region>.amazonaws.com/, Content-Type
 *   application/x-www-form-urlencoded, Action=Publish&Version=2010-03-31&TopicArn=…&Message=…
 *   (&Subject=…: ASCII, no line break, at most 100 characters);
 * - response: <PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>
 *   <MessageId>…</MessageId></PublishResult><ResponseMetadata><RequestId>…</RequestId>…;
 * - errors: <ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code>
 *   <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>, with the HTTP status the
 *   page lists (AuthorizationError 403, NotFound 404, InvalidParameter 400, …).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider, HttpRequest, SourceData } from '@smithy/types';

const VERSION = '2010-03-31';

function bytes(data: SourceData): string | Uint8Array {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

/** SHA-256 (and its HMAC) as the signer wants it, from node:crypto. */
class Sha256 {
  private hash: Hash | Hmac;
  private readonly secret: string | Uint8Array | undefined;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytes(secret);
    this.hash = this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
}

/** An error SNS answered, named by its Code (what the SDK's errors carry as `name`). */
export class SnsError extends Error {
  readonly $metadata: { httpStatusCode: number };
  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = code;
    this.$metadata = { httpStatusCode: status };
  }
}

export interface SnsQueryOptions {
  /** the caller's credentials (an SDK client's `config.credentials`) */
  readonly credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** a fixed endpoint (tests); default https://sns.<region of the topic>.amazonaws.com */
  readonly endpoint?: string;
  readonly timeoutMs?: number;
}

function region(topicArn: string): { region: string; partition: string } {
  const match = /^arn:(aws[\w-]*):sns:([a-z0-9-]+):\d{12}:[\w-]{1,256}$/.exec(topicArn);
  if (!match) throw new SnsError('InvalidParameter', `not an SNS topic ARN: ${JSON.stringify(topicArn)}`, 400);
  return { partition: match[1] ?? 'aws', region: match[2] ?? '' };
}

function element(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return match?.[1]?.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

export class SnsQueryClient {
  constructor(private readonly options: SnsQueryOptions) {}

  /** Publishes one message to a topic; the MessageId, or an SnsError named by SNS's Code. */
  async publish(input: { readonly topicArn: string; readonly subject: string; readonly message: string }): Promise<string> {
    const { region: topicRegion, partition } = region(input.topicArn);
    const url = new URL(this.options.endpoint ?? `https://sns.${topicRegion}.${partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com'}/`);
    const body = new URLSearchParams({ Action: 'Publish', Version: VERSION, TopicArn: input.topicArn, Subject: input.subject, Message: input.message }).toString();
    const request: HttpRequest = {
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname || '/',
      query: {},
      headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body,
    };
    const credentials = this.options.credentials;
    const signer = new SignatureV4({ service: 'sns', region: topicRegion, credentials: typeof credentials === 'function' ? credentials : () => Promise.resolve(credentials), sha256: Sha256 });
    const signed = await signer.sign(request);
    const answer = await fetch(url, {
      method: 'POST',
      headers: Object.fromEntries(Object.entries(signed.headers).filter(([name]) => name.toLowerCase() !== 'host')),
      body,
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
    });
    const text = await answer.text();
    if (!answer.ok) {
      throw new SnsError(element(text, 'Code') ?? `HTTP${answer.status}`, element(text, 'Message') ?? `SNS answered HTTP ${answer.status}`, answer.status);
    }
    const messageId = element(text, 'MessageId');
    if (!messageId) throw new SnsError('MalformedResponse', `SNS answered ${answer.status} without a MessageId`, answer.status);
    return messageId;
  }
}
