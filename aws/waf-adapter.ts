/**
 * portsnare's WAF IP sets through the WAFV2 API. GetIPSet returns the list and a LockToken;
 * UpdateIPSet replaces the whole list under that token and fails with WAFOptimisticLockException
 * when the set changed since — then read again (new token) and retry after a jittered pause.
 * At most one UpdateIPSet per second per account and Region (the pacer), so many new attackers go
 * into one batched update; throttling and WAFLimitsExceededException back off and retry. The
 * quota is per account and Region, not per scope: "AWS WAF allows a maximum of one request per
 * second, per account, per AWS Region for API calls to any individual Create, Put, or Update
 * action" (https://docs.aws.amazon.com/solutions/latest/security-automations-for-aws-waf/quotas.html),
 * and CLOUDFRONT-scope calls go to us-east-1 (API_IPSet.html, Scope), so a us-east-1 plane's
 * REGIONAL and CLOUDFRONT sets share one call a second. The pacer's key is the Region the
 * scope's client calls (its `region`); the account is the container's (one adapter, one role).
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_GetIPSet.html
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_UpdateIPSet.html
 * https://docs.aws.amazon.com/waf/latest/developerguide/limits.html
 */
import { GetIPSetCommand, UpdateIPSetCommand, type WAFV2Client } from '@aws-sdk/client-wafv2';
import { tryParseCidr } from '../core/address';
import type { WafSetRef } from '../core/settings';
import type { WafSetState, WafSetUpdate } from '../core/waf';
import type { Clock } from './clock';
import type { Observability } from './observability';
import { backoffMs, errorName, isThrottling, withRetry } from './retry';

export const ERR_LOCK = 'WAFOptimisticLockException';
export const ERR_LIMITS = 'WAFLimitsExceededException';
export const ERR_NONEXISTENT = 'WAFNonexistentItemException';
/** "Your request is valid, but WAF couldn't perform the operation because of a system problem. Retry your request." */
export const ERR_INTERNAL = 'WAFInternalErrorException';

function retryable(error: unknown): boolean {
  return isThrottling(error) || errorName(error) === ERR_INTERNAL;
}
export const UPDATE_INTERVAL_MS = 1000;

/** Spaces UpdateIPSet calls of one key (the account and Region: WafAdapter's pacerKey) at least `intervalMs` apart. */
export class UpdatePacer {
  private readonly last = new Map<string, number>();
  constructor(private readonly intervalMs = UPDATE_INTERVAL_MS) {}

  async wait(key: string, clock: Clock): Promise<void> {
    const last = this.last.get(key);
    if (last !== undefined) {
      const wait = last + this.intervalMs - clock.now();
      if (wait > 0) await clock.sleep(wait);
    }
    this.last.set(key, clock.now());
  }
}


export type WafClients = Partial<Record<WafSetRef['scope'], WAFV2Client>>;

export interface ReadSet extends WafSetState {
  readonly lockToken: string;
}

function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  const canon = (list: readonly string[]) => new Set(list.map((x) => tryParseCidr(x, true)?.text ?? x));
  const sa = canon(a);
  const sb = canon(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

export class WafAdapter {
  constructor(
    private readonly clients: WafClients,
    private readonly clock: Clock,
    private readonly obs: Observability,
    /** one per adapter, and one adapter per container (lambda/enforce/handler.ts defaultDeps): nothing module-global, so many planes can run in one process */
    private readonly pacer: UpdatePacer = new UpdatePacer(),
    private readonly random: () => number = Math.random,
  ) {}

  private client(ref: WafSetRef): WAFV2Client {
    const client = this.clients[ref.scope];
    if (!client) throw new Error(`no WAFV2 client for scope ${ref.scope}`);
    return client;
  }

  private readonly regions = new Map<WafSetRef['scope'], Promise<string>>();

  /**
   * The pacer's key of a scope: the Region its client calls (aws/clients/wafv2.ts: CLOUDFRONT's
   * client is us-east-1's, REGIONAL's the function's Region), so two scopes in one Region share
   * one call a second. A client whose Region cannot be resolved is paced on its own (its scope).
   */
  pacerKey(ref: WafSetRef): Promise<string> {
    let key = this.regions.get(ref.scope);
    if (!key) {
      key = (async () => {
        try {
          const region = this.client(ref).config.region;
          const value = typeof region === 'function' ? await region() : region;
          return typeof value === 'string' && value ? `region:${value}` : `scope:${ref.scope}`;
        } catch {
          return `scope:${ref.scope}`;
        }
      })();
      this.regions.set(ref.scope, key);
    }
    return key;
  }

  private get(ref: WafSetRef) {
    return withRetry(() => this.client(ref).send(new GetIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id })), {
      clock: this.clock,
      random: this.random,
      retryable,
      onRetry: (error) => {
        if (isThrottling(error)) this.obs.count('Throttles');
      },
    });
  }

  async read(refs: readonly WafSetRef[]): Promise<ReadSet[]> {
    const result: ReadSet[] = [];
    for (const ref of refs) {
      try {
        const out = await this.get(ref);
        result.push({ ref, addresses: out.IPSet?.Addresses ?? [], lockToken: out.LockToken ?? '' });
      } catch (error) {
        if (errorName(error) !== ERR_NONEXISTENT) throw error;
        // A configured set that is gone: the others still work; its family has less room.
        this.obs.log.error('configured WAF IP set does not exist; skipped', { set: ref.name, id: ref.id, scope: ref.scope });
      }
    }
    return result;
  }

  /**
   * Writes one set's new list; throws when it could not (after the retries). Returns what the set
   * holds after it and the lock token to write it with next (UpdateIPSet's NextLockToken), for a
   * cache of the set (aws/points.ts). On WAFOptimisticLockException (the set changed
   * since it was read: another writer, an operator in the console) the set is read again; with
   * `rebase` the list written is recomputed from the fresh contents (an incremental run applies
   * its delta again, keeping what the other writer did), without it the planned list is written
   * as it is (a full run's list is the whole desired state).
   */
  async write(
    update: WafSetUpdate,
    lockToken: string,
    maxAttempts = 8,
    rebase?: (fresh: readonly string[]) => readonly string[],
  ): Promise<{ readonly addresses: readonly string[]; readonly lockToken?: string }> {
    const ref = update.ref;
    let token = lockToken;
    let addresses = update.addresses;
    let lastError: unknown;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      await this.pacer.wait(await this.pacerKey(ref), this.clock);
      try {
        const out = await this.client(ref).send(
          new UpdateIPSetCommand({ Name: ref.name, Scope: ref.scope, Id: ref.id, Addresses: [...addresses], LockToken: token }),
        );
        return { addresses, ...(out.NextLockToken ? { lockToken: out.NextLockToken } : {}) };
      } catch (error) {
        lastError = error;
        const name = errorName(error);
        if (name === ERR_LOCK) {
          this.obs.count('LockRetries');
          this.obs.log.warn('IP set changed since it was read; reading again', { set: ref.name, attempt: attempt + 1 });
          await this.clock.sleep(50 + Math.floor(this.random() * 250));
          const fresh = await this.get(ref);
          token = fresh.LockToken ?? '';
          const freshAddresses = fresh.IPSet?.Addresses ?? [];
          if (rebase) addresses = rebase(freshAddresses);
          if (sameAddresses(freshAddresses, addresses)) return { addresses: freshAddresses, ...(token ? { lockToken: token } : {}) };
          continue;
        }
        if (retryable(error) || name === ERR_LIMITS) {
          if (name !== ERR_INTERNAL) this.obs.count('Throttles');
          if (name === ERR_LIMITS) this.obs.log.warn('WAFLimitsExceededException on UpdateIPSet; backing off', { set: ref.name, attempt: attempt + 1 });
          await this.clock.sleep(Math.max(UPDATE_INTERVAL_MS, backoffMs(attempt, 500, 10_000, this.random)));
          continue;
        }
        throw error;
      }
    }
    throw lastError;
  }
}
