/**
 * AWS Security Hub's BatchImportFindings on a local HTTP port, in the wire protocol
 * @aws-sdk/client-securityhub 3.11xx speaks, so the REAL SecurityHubClient (its serializer, its
 * error mapping) imports findings into it.
 *
 * The protocol (read from the client: dist-cjs/index.js, `BatchImportFindings$` is REST-JSON
 * `POST /findings/import`, 200): a JSON body {"Findings": [...]}, the answer
 * {"FailedCount", "SuccessCount", "FailedFindings": [{"Id", "ErrorCode", "ErrorMessage"}]}; an
 * error is its HTTP status with the `x-amzn-ErrorType` header and {"Code", "Message"}; signed with
 * Signature Version 4 for the service "securityhub".
 * https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html
 *
 * What the fake holds to, each from its page:
 * - 1 to 100 findings per call; up to 240 KB per finding and 6 MB per call; 10 calls per second
 *   per account and Region with a burst of 30 (a token bucket: 30 tokens, 10 a second); past it
 *   the call fails with HTTP 429 LimitExceededException, the throttling error the API reference
 *   lists ("beyond the current AWS account or throttling limits")
 *   (https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html,
 *   API_BatchImportFindings.html "Errors");
 * - the required attributes of every finding: AwsAccountId, CreatedAt, Description, GeneratorId,
 *   Id, ProductArn, Resources (each with Type and Id), SchemaVersion, Severity, Title, Types,
 *   UpdatedAt (https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html);
 *   a finding without one, or with a value out of its bounds, is returned in FailedFindings with
 *   ErrorCode InvalidInput and does not stop the others (API_BatchImportFindings.html:
 *   "The list of findings that failed to import");
 * - ProductArn: the caller's own default product `arn:aws:securityhub:<region>:<account>:product/<account>/default`,
 *   and AwsAccountId the caller's account (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-custom-providers.html);
 *   Security Hub not enabled: every finding fails with InvalidAccess
 *   (https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchimportfindings.html);
 * - SchemaVersion "2018-10-08"; timestamps RFC 3339 (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format.html);
 *   Types `namespace/category/classifier` with a documented namespace
 *   (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-type-taxonomy.html);
 *   Severity.Label one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL (https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_Severity.html);
 *   RecordState ACTIVE or ARCHIVED, Title ≤ 256, Description ≤ 1024, ProductFields ≤ 50 pairs
 *   (https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_AwsSecurityFinding.html);
 * - create or update by Id: an update whose UpdatedAt is the same as or earlier than the stored
 *   finding's is ignored; Severity and Types of an existing finding change through
 *   FindingProviderFields (finding-update-batchimportfindings.html).
 */
import type http from 'node:http';
import { SecurityHubClient } from '@aws-sdk/client-securityhub';
import { type HttpReply, HttpFake, signedFor } from './http-fake';

export const IMPORT_OP = 'BatchImportFindings';
const MAX_FINDINGS = 100;
const MAX_FINDING_BYTES = 240 * 1024;
const MAX_REQUEST_BYTES = 6 * 1024 * 1024;
const RATE_PER_SECOND = 10;
const BURST = 30;
const NAMESPACES = ['Software and Configuration Checks', 'TTPs', 'Effects', 'Unusual Behaviors', 'Sensitive Data Identifications'];
const LABELS = ['INFORMATIONAL', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const REQUIRED = ['AwsAccountId', 'CreatedAt', 'Description', 'GeneratorId', 'Id', 'ProductArn', 'Resources', 'SchemaVersion', 'Severity', 'Title', 'Types', 'UpdatedAt'] as const;

type Finding = Record<string, unknown>;

/** A finding as Security Hub keeps it (what tests assert on). */
export interface StoredFinding {
  readonly finding: Finding;
  readonly severity: string;
  readonly recordState: string;
  readonly updatedAt: string;
  /** imports that changed it (its creation included) */
  readonly versions: number;
}

/** One call as it reached the service. */
export interface ImportCall {
  readonly at: number;
  readonly ids: string[];
  readonly status: number;
}

function error(status: number, code: string, message: string): HttpReply {
  return { status, headers: { 'content-type': 'application/json', 'x-amzn-errortype': code }, body: JSON.stringify({ Code: code, Message: message }) };
}

function nonEmpty(value: unknown): value is string {
  return typeof value === 'string' && value.trim().length > 0;
}

export class SecurityHubServer extends HttpFake {
  readonly findings = new Map<string, StoredFinding>();
  readonly calls: ImportCall[] = [];
  /** Security Hub enabled in the account and Region */
  enabled = true;
  private tokens = BURST;
  private refilledAt = Date.now();
  private throttles = 0;
  private readonly failures = new Map<string, string>();

  constructor(
    readonly account = '123456789012',
    readonly region = 'eu-west-1',
  ) {
    super();
  }

  get productArn(): string {
    return `arn:aws:securityhub:${this.region}:${this.account}:product/${this.account}/default`;
  }

  /** A SecurityHubClient as the function builds it, pointed here. */
  client(options: { maxAttempts?: number } = {}): SecurityHubClient {
    return new SecurityHubClient({
      region: this.region,
      endpoint: this.endpoint,
      credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test-secret' },
      maxAttempts: options.maxAttempts ?? 1,
    });
  }

  /** The next `n` calls are throttled (HTTP 429) whatever the rate. */
  throttleNext(n = 1): void {
    this.throttles += n;
  }

  /** The next import of finding `id` fails with `code` (in FailedFindings); the others of its call go through. */
  failFindingOnce(id: string, code = 'InternalFailure'): void {
    this.failures.set(id, code);
  }

  protected override opOf(): string {
    return IMPORT_OP;
  }

  protected serve(request: http.IncomingMessage, body: string): { op: string; reply: HttpReply } {
    return { op: IMPORT_OP, reply: this.importFindings(request, body) };
  }

  private takeToken(now: number): boolean {
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilledAt) / 1000) * RATE_PER_SECOND);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private importFindings(request: http.IncomingMessage, body: string): HttpReply {
    const now = Date.now();
    const record = (status: number, ids: string[] = []) => this.calls.push({ at: now, ids, status });
    if (request.method !== 'POST' || request.url?.split('?')[0] !== '/findings/import') {
      record(404);
      return error(404, 'ResourceNotFoundException', `no operation at ${request.method} ${request.url}`);
    }
    if (!signedFor(request, 'securityhub')) {
      record(403);
      return error(403, 'AccessDeniedException', 'the request is not signed with Signature Version 4 for securityhub');
    }
    if (this.throttles > 0 || !this.takeToken(now)) {
      if (this.throttles > 0) this.throttles--;
      record(429);
      return error(429, 'LimitExceededException', `Rate exceeded: ${RATE_PER_SECOND} calls per second per account and Region, burst ${BURST}`);
    }
    if (Buffer.byteLength(body) > MAX_REQUEST_BYTES) {
      record(400);
      return error(400, 'InvalidInputException', `the request is larger than ${MAX_REQUEST_BYTES} bytes`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      record(400);
      return error(400, 'InvalidInputException', 'the body is not JSON');
    }
    const list = (parsed as { Findings?: unknown }).Findings;
    if (!Array.isArray(list) || list.length < 1 || list.length > MAX_FINDINGS) {
      record(400);
      return error(400, 'InvalidInputException', `Findings must hold 1 to ${MAX_FINDINGS} findings, got ${Array.isArray(list) ? list.length : typeof list}`);
    }
    const failed: Array<{ Id: string; ErrorCode: string; ErrorMessage: string }> = [];
    let success = 0;
    for (const item of list as unknown[]) {
      const finding = (typeof item === 'object' && item !== null ? item : {}) as Finding;
      const id = typeof finding.Id === 'string' ? finding.Id : '';
      const fault = this.enabled ? this.validate(finding) : 'Security Hub is not enabled in this account and Region';
      const injected = this.failures.get(id);
      if (injected) this.failures.delete(id);
      if (fault || injected) {
        failed.push({ Id: id, ErrorCode: injected ?? (this.enabled ? 'InvalidInput' : 'InvalidAccess'), ErrorMessage: injected ? 'injected failure' : fault! });
        continue;
      }
      this.store(finding);
      success++;
    }
    record(200, (list as Finding[]).map((f) => String(f?.Id)));
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ FailedCount: failed.length, SuccessCount: success, FailedFindings: failed }) };
  }

  /** Why the finding is not valid ASFF for this account, or undefined. */
  private validate(f: Finding): string | undefined {
    if (Buffer.byteLength(JSON.stringify(f)) > MAX_FINDING_BYTES) return `the finding is larger than ${MAX_FINDING_BYTES} bytes`;
    for (const key of REQUIRED) if (f[key] === undefined || f[key] === null) return `${key} is required`;
    for (const key of ['AwsAccountId', 'CreatedAt', 'Description', 'GeneratorId', 'Id', 'ProductArn', 'SchemaVersion', 'Title', 'UpdatedAt'] as const) {
      if (!nonEmpty(f[key])) return `${key} must be a non-empty string`;
    }
    if (f.SchemaVersion !== '2018-10-08') return `SchemaVersion ${JSON.stringify(f.SchemaVersion)} is not 2018-10-08`;
    if (f.ProductArn !== this.productArn) return `ProductArn ${String(f.ProductArn)} is not this account's default product ${this.productArn}`;
    if (f.AwsAccountId !== this.account) return `AwsAccountId ${String(f.AwsAccountId)} is not the calling account ${this.account}`;
    for (const key of ['CreatedAt', 'UpdatedAt', 'FirstObservedAt', 'LastObservedAt'] as const) {
      const value = f[key];
      if (value !== undefined && (typeof value !== 'string' || !RFC3339.test(value) || Number.isNaN(Date.parse(value)))) return `${key} ${JSON.stringify(value)} is not an RFC 3339 timestamp`;
    }
    if ((f.Title as string).length > 256) return 'Title is longer than 256 characters';
    if ((f.Description as string).length > 1024) return 'Description is longer than 1024 characters';
    const typesFault = this.typesFault(f.Types, 'Types');
    if (typesFault) return typesFault;
    const severity = f.Severity as { Label?: unknown } | undefined;
    if (typeof severity !== 'object' || !LABELS.includes(String(severity.Label))) return `Severity.Label ${JSON.stringify(severity?.Label)} is not one of ${LABELS.join(', ')}`;
    const provider = f.FindingProviderFields as { Severity?: { Label?: unknown }; Types?: unknown } | undefined;
    if (provider?.Severity && !LABELS.includes(String(provider.Severity.Label))) return `FindingProviderFields.Severity.Label ${JSON.stringify(provider.Severity.Label)} is not valid`;
    if (provider?.Types !== undefined) {
      const fault = this.typesFault(provider.Types, 'FindingProviderFields.Types');
      if (fault) return fault;
    }
    if (f.RecordState !== undefined && f.RecordState !== 'ACTIVE' && f.RecordState !== 'ARCHIVED') return `RecordState ${JSON.stringify(f.RecordState)} is not ACTIVE or ARCHIVED`;
    const resources = f.Resources;
    if (!Array.isArray(resources) || resources.length === 0) return 'Resources must hold at least one resource';
    for (const r of resources as Array<Record<string, unknown>>) if (!nonEmpty(r?.Type) || !nonEmpty(r?.Id)) return 'each resource needs Type and Id';
    if (f.ProductFields !== undefined) {
      const fields = f.ProductFields as Record<string, unknown>;
      if (Object.keys(fields).length > 50) return 'ProductFields holds more than 50 pairs';
      if (Object.values(fields).some((v) => typeof v !== 'string')) return 'ProductFields values must be strings';
    }
    return undefined;
  }

  private typesFault(types: unknown, key: string): string | undefined {
    if (!Array.isArray(types) || types.length === 0 || types.length > 50) return `${key} must hold 1 to 50 types`;
    for (const t of types) {
      const parts = typeof t === 'string' ? t.split('/') : [];
      if (parts.length < 1 || parts.length > 3 || !NAMESPACES.includes(parts[0]!)) return `${key}: ${JSON.stringify(t)} is not namespace/category/classifier with a documented namespace`;
    }
    return undefined;
  }

  private store(f: Finding): void {
    const id = f.Id as string;
    const existing = this.findings.get(id);
    const updatedAt = f.UpdatedAt as string;
    // an update that is not newer is ignored (and still counted a success)
    if (existing && Date.parse(updatedAt) <= Date.parse(existing.updatedAt)) return;
    const provider = f.FindingProviderFields as { Severity?: { Label: string } } | undefined;
    const severity = existing ? (provider?.Severity?.Label ?? existing.severity) : (provider?.Severity?.Label ?? (f.Severity as { Label: string }).Label);
    this.findings.set(id, {
      finding: f,
      severity,
      recordState: typeof f.RecordState === 'string' ? f.RecordState : 'ACTIVE',
      updatedAt,
      versions: (existing?.versions ?? 0) + 1,
    });
  }
}
