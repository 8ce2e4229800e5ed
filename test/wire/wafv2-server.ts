/**
 * test/fakes/wafv2.ts's IP set state behind the AWS JSON 1.1 protocol on a local HTTP port, so
 * the REAL WAFV2Client (serializer, error mapping, retries) talks to it. Wire format, as the WAF
 * API Reference documents it and @aws-sdk/client-wafv2 (AwsJson1_1Protocol in @aws-sdk/core)
 * sends and parses it:
 * - request: POST /, Content-Type application/x-amz-json-1.1, X-Amz-Target
 *   AWSWAF_20190729.<Op>, the input as JSON, signed with Signature Version 4.
 *   https://docs.aws.amazon.com/waf/latest/APIReference/CommonParameters.html
 * - response: 200 and the output as JSON;
 * - errors: {"__type": "<Code>", "Message": "…"}, HTTP 400 (WAFOptimisticLockException,
 *   WAFNonexistentItemException, WAFLimitsExceededException, WAFInvalidParameterException,
 *   ThrottlingException), HTTP 500 for WAFInternalErrorException.
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html (Errors)
 *   https://docs.aws.amazon.com/waf/latest/APIReference/CommonErrors.html
 */
import type http from 'node:http';
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import type { Clock } from '../../aws/clock';
import { FakeWafv2, type WafOp } from '../fakes/wafv2';
import { errorParts, type HttpReply, HttpFake, signedFor } from './http-fake';

/**
 * The Region a request was signed for: the credential scope of its Signature Version 4
 * Authorization header, "Credential=<key>/<date>/<region>/<service>/aws4_request". WAF's
 * one-update-a-second quota is per account and Region (test/fakes/wafv2.ts).
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html
 */
function signedRegion(request: http.IncomingMessage): string {
  const match = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\//.exec(String(request.headers.authorization ?? ''));
  return match?.[1] ?? '';
}

const TARGET_PREFIX = 'AWSWAF_20190729.';
const OPS: readonly WafOp[] = ['GetIPSet', 'UpdateIPSet'];
const JSON_TYPE = 'application/x-amz-json-1.1';

export class WafServer extends HttpFake {
  readonly waf: FakeWafv2;

  constructor(clock: Clock, random: () => number = Math.random) {
    super();
    this.waf = new FakeWafv2(clock, random);
  }

  /** The next `n` calls of `op` are throttled with ThrottlingException. */
  throttleNext(op: WafOp, n: number): void {
    this.waf.failNext(op, 'ThrottlingException', n);
  }

  /** A real WAFV2Client pointed at this server, calling `region` (CLOUDFRONT scope: us-east-1). */
  client(maxAttempts = 2, region = 'eu-west-1'): WAFV2Client {
    return new WAFV2Client({ region, endpoint: this.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }, maxAttempts });
  }

  protected serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply } {
    const target = String(request.headers['x-amz-target'] ?? '');
    const op = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target;
    const fail = (status: number, code: string, message: string) => ({
      op,
      reply: { status, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify({ __type: code, Message: message }) },
    });
    if (!signedFor(request, 'wafv2')) return fail(403, 'MissingAuthenticationToken', 'The request must contain a valid (registered) AWS access key ID.');
    if (request.method !== 'POST' || request.headers['content-type'] !== JSON_TYPE) return fail(400, 'SerializationException', `expected a POST of ${JSON_TYPE}`);
    const known = OPS.find((o) => `${TARGET_PREFIX}${o}` === target);
    if (!known) return fail(400, 'UnknownOperationException', `unknown operation ${target}`);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return fail(400, 'SerializationException', 'the body is not JSON');
    }
    try {
      const output = this.waf.handle(known, input, signedRegion(request));
      return { op, reply: { status: 200, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify(output) } };
    } catch (error) {
      const { code, message, status } = errorParts(error);
      return fail(status, code, message);
    }
  }
}
