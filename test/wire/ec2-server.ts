/**
 * test/fakes/ec2.ts's network ACL state behind the EC2 Query protocol on a local HTTP port, so the
 * REAL EC2Client (its serializer, XML parser, error mapping and retries) talks to it.
 * Wire format, as the EC2 API Reference documents it and @aws-sdk/client-ec2 (AwsEc2QueryProtocol
 * in @aws-sdk/core) sends and parses it:
 * - request: POST /, application/x-www-form-urlencoded, Action=<Op>&Version=2016-11-15, lists
 *   flattened as NetworkAclId.1, Filter.1.Name, Filter.1.Value.1, structures as Icmp.Code,
 *   PortRange.From; signed with Signature Version 4 (else 401 AuthFailure).
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html
 * - response: <OpResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"> with requestId and the
 *   output in lowerCamel elements, lists as <xSet><item>…</item></xSet>; writes answer <return>true</return>.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeNetworkAcls.html (Examples)
 * - errors: <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>,
 *   HTTP 400 for client errors, 503 for RequestLimitExceeded, 500 for InternalError.
 *   https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 *   https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { EC2Client, type NetworkAclEntry } from '@aws-sdk/client-ec2';
import { type Ec2Op, FakeEc2 } from '../fakes/ec2';
import { errorParts, type HttpReply, HttpFake, signedFor } from './http-fake';

const XMLNS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const OPS: readonly Ec2Op[] = ['DescribeNetworkAcls', 'CreateNetworkAclEntry', 'ReplaceNetworkAclEntry', 'DeleteNetworkAclEntry'];
const REQUIRED: Record<Ec2Op, readonly string[]> = {
  DescribeNetworkAcls: [],
  CreateNetworkAclEntry: ['NetworkAclId', 'RuleNumber', 'Protocol', 'RuleAction', 'Egress'],
  ReplaceNetworkAclEntry: ['NetworkAclId', 'RuleNumber', 'Protocol', 'RuleAction', 'Egress'],
  DeleteNetworkAclEntry: ['NetworkAclId', 'RuleNumber', 'Egress'],
};

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function element(name: string, value: unknown): string {
  return value === undefined ? '' : `<${name}>${escape(String(value))}</${name}>`;
}

function entryXml(entry: NetworkAclEntry): string {
  return [
    '<item>',
    element('ruleNumber', entry.RuleNumber),
    element('protocol', entry.Protocol),
    element('ruleAction', entry.RuleAction),
    element('egress', entry.Egress),
    element('cidrBlock', entry.CidrBlock),
    element('ipv6CidrBlock', entry.Ipv6CidrBlock),
    entry.IcmpTypeCode ? `<icmpTypeCode>${element('code', entry.IcmpTypeCode.Code)}${element('type', entry.IcmpTypeCode.Type)}</icmpTypeCode>` : '',
    entry.PortRange ? `<portRange>${element('from', entry.PortRange.From)}${element('to', entry.PortRange.To)}</portRange>` : '',
    '</item>',
  ].join('');
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

/** The integer a query parameter holds, or InvalidParameterValue naming it. */
function integer(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  if (!/^-?\d+$/.test(raw)) throw new QueryError('InvalidParameterValue', `Invalid value '${raw}' for ${name}`);
  return Number(raw);
}

function boolean(params: URLSearchParams, name: string): boolean | undefined {
  const raw = params.get(name);
  if (raw === null) return undefined;
  if (raw !== 'true' && raw !== 'false') throw new QueryError('InvalidParameterValue', `Invalid value '${raw}' for ${name}`);
  return raw === 'true';
}

/** Values of a flattened list `prefix.1`, `prefix.2`, … in index order. */
function list(params: URLSearchParams, prefix: string): string[] {
  const found: Array<[number, string]> = [];
  for (const [key, value] of params) {
    const match = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)$`).exec(key);
    if (match) found.push([Number(match[1]), value]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, value]) => value);
}

/** The operation's input as the SDK types name it, from the query parameters. */
function inputOf(op: Ec2Op, params: URLSearchParams): Record<string, unknown> {
  for (const name of REQUIRED[op]) {
    if (params.get(name) === null) throw new QueryError('MissingParameter', `The request must contain the parameter ${name}`);
  }
  if (op === 'DescribeNetworkAcls') {
    const filters: Array<{ Name: string; Values: string[] }> = [];
    for (let n = 1; params.get(`Filter.${n}.Name`) !== null; n++) filters.push({ Name: params.get(`Filter.${n}.Name`)!, Values: list(params, `Filter.${n}.Value`) });
    const ids = list(params, 'NetworkAclId');
    return { ...(ids.length ? { NetworkAclIds: ids } : {}), ...(filters.length ? { Filters: filters } : {}) };
  }
  const input: Record<string, unknown> = { NetworkAclId: params.get('NetworkAclId'), RuleNumber: integer(params, 'RuleNumber'), Egress: boolean(params, 'Egress') };
  if (op === 'DeleteNetworkAclEntry') return input;
  input.Protocol = params.get('Protocol');
  input.RuleAction = params.get('RuleAction');
  if (params.get('CidrBlock') !== null) input.CidrBlock = params.get('CidrBlock');
  if (params.get('Ipv6CidrBlock') !== null) input.Ipv6CidrBlock = params.get('Ipv6CidrBlock');
  if (params.get('Icmp.Type') !== null || params.get('Icmp.Code') !== null) input.IcmpTypeCode = { Type: integer(params, 'Icmp.Type'), Code: integer(params, 'Icmp.Code') };
  if (params.get('PortRange.From') !== null || params.get('PortRange.To') !== null) input.PortRange = { From: integer(params, 'PortRange.From'), To: integer(params, 'PortRange.To') };
  return input;
}

export class Ec2Server extends HttpFake {
  constructor(readonly ec2: FakeEc2 = new FakeEc2()) {
    super();
  }

  /** The next `n` calls (any operation) are throttled: RequestLimitExceeded, HTTP 503. */
  throttleNext(n: number): void {
    this.ec2.failNext('*', 'RequestLimitExceeded', n);
  }

  /** A real EC2Client pointed at this server. */
  client(maxAttempts = 2): EC2Client {
    return new EC2Client({ region: 'eu-west-1', endpoint: this.endpoint, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' }, maxAttempts });
  }

  protected serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply } {
    const params = new URLSearchParams(body);
    const action = params.get('Action') ?? '';
    try {
      if (!signedFor(request, 'ec2')) throw new QueryError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401);
      if (request.method !== 'POST' || !String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
        throw new QueryError('InvalidParameterValue', 'expected a form-encoded POST');
      }
      if (params.get('Version') !== '2016-11-15') throw new QueryError('InvalidParameterValue', `unsupported Version ${params.get('Version')}`);
      const op = OPS.find((o) => o === action);
      if (!op) throw new QueryError('InvalidAction', `The action ${action} is not valid for this web service.`);
      const output = this.ec2.handle(op, inputOf(op, params)) as { NetworkAcls?: Array<{ NetworkAclId?: string; VpcId?: string; IsDefault?: boolean; Entries?: NetworkAclEntry[] }> };
      const inner =
        op === 'DescribeNetworkAcls'
          ? `<networkAclSet>${(output.NetworkAcls ?? [])
              .map(
                (acl) =>
                  `<item>${element('networkAclId', acl.NetworkAclId)}${element('vpcId', acl.VpcId)}${element('default', acl.IsDefault)}<entrySet>${(acl.Entries ?? []).map(entryXml).join('')}</entrySet><associationSet/><tagSet/></item>`,
              )
              .join('')}</networkAclSet>`
          : '<return>true</return>';
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<${op}Response xmlns="${XMLNS}"><requestId>${randomUUID()}</requestId>${inner}</${op}Response>`;
      return { op, reply: { status: 200, headers: { 'content-type': 'text/xml;charset=UTF-8' }, body: xml } };
    } catch (error) {
      const { code, message, status } = error instanceof QueryError ? { code: error.code, message: error.message, status: error.status } : errorParts(error);
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${escape(code)}</Code><Message>${escape(message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`;
      return { op: action, reply: { status, headers: { 'content-type': 'text/xml;charset=UTF-8' }, body: xml } };
    }
  }
}
