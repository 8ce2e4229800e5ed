/**
 * A stateful fake of WAFV2 IP sets, driven through aws-sdk-client-mock. Modelled rules:
 * - GetIPSet returns the set and a LockToken; UpdateIPSet replaces the whole address list and
 *   needs the current LockToken, else WAFOptimisticLockException; a successful update returns
 *   NextLockToken. An unknown set: WAFNonexistentItemException.
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_GetIPSet.html
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 * - Addresses in CIDR notation of the set's IP version, any prefix but /0 (else
 *   WAFInvalidParameterException). https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html
 * - At most 10,000 addresses in one IP set: WAFLimitsExceededException past it.
 *   https://docs.aws.amazon.com/waf/latest/developerguide/limits.html
 * - Call rate: more than one UpdateIPSet a second per account and Region is throttled with
 *   ThrottlingException (the common throttling error of AWS APIs). "AWS WAF allows a maximum of
 *   one request per second, per account, per AWS Region for API calls to any individual Create,
 *   Put, or Update action." The fake is one account; the Region is the one the call was signed
 *   for (test/wire/wafv2-server.ts), else through the mock: CLOUDFRONT's us-east-1 (its calls go
 *   there: API_IPSet.html, Scope), REGIONAL's `region`. So a us-east-1 plane's REGIONAL and
 *   CLOUDFRONT updates share one call a second.
 *   https://docs.aws.amazon.com/solutions/latest/security-automations-for-aws-waf/quotas.html
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html
 *   https://docs.aws.amazon.com/waf/latest/APIReference/CommonErrors.html
 * - "Temporary inconsistencies during updates": changes take seconds to minutes to propagate, so
 *   a GetIPSet right after an update may still return the set as it was before (its addresses
 *   and its then LockToken), and an update under that token fails with
 *   WAFOptimisticLockException (staleNext).
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 *   https://docs.aws.amazon.com/waf/latest/developerguide/waf-referenced-set-managing.html
 * - A set deleted out of band (the console, another stack): every call on it fails with
 *   WAFNonexistentItemException (deleteSet).
 *   https://docs.aws.amazon.com/waf/latest/APIReference/API_DeleteIPSet.html
 *
 * The same state serves test/wire/wafv2-server.ts, which puts it behind the AWS JSON 1.1
 * protocol on a local HTTP port for the real WAFV2Client.
 */
import {
  GetIPSetCommand,
  type GetIPSetCommandInput,
  UpdateIPSetCommand,
  type UpdateIPSetCommandInput,
  WAFV2Client,
} from '@aws-sdk/client-wafv2';
import { mockClient } from 'aws-sdk-client-mock';
import { tryParseCidr } from '../../core/address';
import type { WafSetRef } from '../../core/settings';
import type { Clock } from '../../aws/clock';
import { awsError } from './errors';

export const WAF_SET_LIMIT = 10_000;

interface StoredSet {
  ref: WafSetRef;
  addresses: string[];
  lockToken: string;
  /** addresses and token before the latest change, for stale reads */
  before?: { addresses: string[]; lockToken: string };
}

export type WafOp = 'GetIPSet' | 'UpdateIPSet';

export class FakeWafv2 {
  readonly client = new WAFV2Client({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly mock = mockClient(this.client);
  private readonly sets = new Map<string, StoredSet>();
  private readonly lastUpdate = new Map<string, number>();
  private tokens = 0;
  private pendingConflicts = 0;
  private staleReads = 0;
  private readonly pending: Array<{ op: 'GetIPSet' | 'UpdateIPSet'; error: string }> = [];
  readonly calls = { GetIPSet: 0, UpdateIPSet: 0, UpdateIPSetAccepted: 0 };
  throttleRate = 0;
  /** enforce the one-update-a-second rate (needs the clock) */
  enforceRate = true;
  /** the Region of REGIONAL-scope calls made through the mock (its client's) */
  region = 'eu-west-1';
  /** every accepted UpdateIPSet: when, which set, in which Region (the rate's key) */
  readonly updates: Array<{ at: number; scope: string; id: string; region: string }> = [];

  constructor(
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {
    this.mock.on(GetIPSetCommand).callsFake(async (input: GetIPSetCommandInput) => this.get(input));
    this.mock.on(UpdateIPSetCommand).callsFake(async (input: UpdateIPSetCommandInput) => this.update(input, input.Scope === 'CLOUDFRONT' ? 'us-east-1' : this.region));
  }

  private key(scope: string | undefined, id: string | undefined): string {
    return `${scope}/${id}`;
  }

  private token(): string {
    this.tokens++;
    return `token-${this.tokens.toString(16).padStart(8, '0')}`;
  }

  addSet(ref: WafSetRef, addresses: string[] = []): void {
    this.sets.set(this.key(ref.scope, ref.id), { ref, addresses: [...addresses], lockToken: this.token() });
  }

  addresses(ref: Pick<WafSetRef, 'scope' | 'id'>): string[] {
    return [...(this.sets.get(this.key(ref.scope, ref.id))?.addresses ?? [])];
  }

  /** Another writer (the console) changes the set: new content, new token. */
  consoleEdit(ref: Pick<WafSetRef, 'scope' | 'id'>, edit: (addresses: string[]) => string[]): void {
    const set = this.sets.get(this.key(ref.scope, ref.id));
    if (!set) throw new Error('no such set');
    set.before = { addresses: [...set.addresses], lockToken: set.lockToken };
    set.addresses = edit([...set.addresses]);
    set.lockToken = this.token();
  }

  /** The set is deleted out of band: from now on every call on it fails. */
  deleteSet(ref: Pick<WafSetRef, 'scope' | 'id'>): void {
    this.sets.delete(this.key(ref.scope, ref.id));
  }

  /** The next `n` GetIPSet calls return each set as it was before its latest change. */
  staleNext(n = 1): void {
    this.staleReads += n;
  }

  /** Serves one call by operation name (the HTTP front end's entry point), signed for `region`. */
  handle(op: WafOp, input: Record<string, unknown>, region: string): object {
    return op === 'GetIPSet' ? this.get(input as unknown as GetIPSetCommandInput) : this.update(input as unknown as UpdateIPSetCommandInput, region);
  }

  /** The next `n` updates find the set changed since it was read (the token rotated). */
  conflictNext(n = 1): void {
    this.pendingConflicts += n;
  }

  failNext(op: 'GetIPSet' | 'UpdateIPSet', error: string, times = 1): void {
    for (let i = 0; i < times; i++) this.pending.push({ op, error });
  }

  clearFaults(): void {
    this.pending.length = 0;
    this.pendingConflicts = 0;
    this.staleReads = 0;
    this.throttleRate = 0;
  }

  private gate(op: 'GetIPSet' | 'UpdateIPSet'): void {
    const index = this.pending.findIndex((p) => p.op === op);
    if (index >= 0) {
      const [fault] = this.pending.splice(index, 1);
      throw awsError(fault!.error, `injected ${fault!.error} on ${op}`, fault!.error === 'WAFInternalErrorException' ? 500 : 400);
    }
    if (this.throttleRate > 0 && this.random() < this.throttleRate) throw awsError('ThrottlingException', 'Rate exceeded');
  }

  private find(input: { Scope?: string; Id?: string; Name?: string }): StoredSet {
    const set = this.sets.get(this.key(input.Scope, input.Id));
    if (!set || set.ref.name !== input.Name) {
      throw awsError('WAFNonexistentItemException', 'WAF couldn’t perform the operation because your resource doesn’t exist.');
    }
    return set;
  }

  private get(input: GetIPSetCommandInput) {
    this.calls.GetIPSet++;
    this.gate('GetIPSet');
    const set = this.find(input);
    const stale = this.staleReads > 0 && set.before !== undefined;
    if (this.staleReads > 0) this.staleReads--;
    const seen = stale && set.before ? set.before : set;
    return {
      IPSet: {
        Name: set.ref.name,
        Id: set.ref.id,
        ARN: `arn:aws:wafv2:eu-west-1:123456789012:${set.ref.scope === 'REGIONAL' ? 'regional' : 'global'}/ipset/${set.ref.name}/${set.ref.id}`,
        IPAddressVersion: set.ref.family === 'ipv4' ? 'IPV4' : 'IPV6',
        Addresses: [...seen.addresses],
      },
      LockToken: seen.lockToken,
    };
  }

  private update(input: UpdateIPSetCommandInput, region: string) {
    this.calls.UpdateIPSet++;
    this.gate('UpdateIPSet');
    const set = this.find(input);
    const now = this.clock.now();
    const last = this.lastUpdate.get(region);
    if (this.enforceRate && last !== undefined && now - last < 1000) {
      throw awsError('ThrottlingException', 'Rate exceeded: one UpdateIPSet per second');
    }
    if (this.pendingConflicts > 0) {
      this.pendingConflicts--;
      set.lockToken = this.token();
    }
    if (input.LockToken !== set.lockToken) {
      throw awsError('WAFOptimisticLockException', 'WAF couldn’t save your changes because someone changed the resource after you started to edit it.');
    }
    const addresses = input.Addresses ?? [];
    if (addresses.length > WAF_SET_LIMIT) {
      throw awsError('WAFLimitsExceededException', `WAF couldn’t perform the operation because you exceeded your resource limit (${WAF_SET_LIMIT} addresses per IP set).`);
    }
    for (const address of addresses) {
      const cidr = address.includes('/') ? tryParseCidr(address, false) : undefined;
      if (!cidr || cidr.prefix === 0 || cidr.family !== set.ref.family) {
        throw awsError('WAFInvalidParameterException', `The parameter Addresses has an invalid value: ${address}`);
      }
    }
    set.before = { addresses: [...set.addresses], lockToken: set.lockToken };
    set.addresses = [...addresses];
    set.lockToken = this.token();
    this.lastUpdate.set(region, now);
    this.updates.push({ at: now, scope: set.ref.scope, id: set.ref.id, region });
    this.calls.UpdateIPSetAccepted++;
    return { NextLockToken: set.lockToken };
  }
}
