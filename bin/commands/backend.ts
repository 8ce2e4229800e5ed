/**
 * One interface over the three places blocks live: a running agent (its loopback control API),
 * the local file store when no agent runs, and a deployed stack (its DynamoDB table and event bus).
 * The commands print what a backend returns and never know which one they talk to.
 */
import type { Family } from '../../core/address';
import type { FindingsTarget } from '../../core/findings';
import type { BlockRecord } from '../../core/policy';
import type { WafRuleEffect } from './stack/waf-effect';

/** One block as the operator sees it. Times are epoch ms. */
export interface BlockView {
  readonly target: string;
  readonly family: Family;
  readonly reason: string;
  readonly offences: number;
  readonly hitCount: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly blockedAt: number;
  readonly expiresAt: number;
  readonly active: boolean;
  /** where the block is in force: "nftables", "waf:REGIONAL/ipv4", "nacl:acl-0abc", or "store only" */
  readonly enforcedIn: readonly string[];
  /**
   * in simulation (README.md "Simulation"): decided and recorded, not enforced. `enforcedIn` then
   * says where it is all the same: a WAF IP set whose rules count (simulation of the whole
   * deployment), or a kernel element the detector placed itself
   */
  readonly simulated?: boolean;
  /** what the block's nftables element dropped (a running agent with element counters only) */
  readonly dropped?: { readonly packets: number; readonly bytes: number };
  /**
   * the WAF rules of the IP sets that hold the block, each with what it blocked in the last hour
   * (a stack only; WAF counts per rule, so a count covers every address of that set)
   */
  readonly wafRules?: readonly WafRuleEffect[];
  readonly sensors: readonly string[];
  readonly note?: string;
  readonly liftedBy?: string;
}

export interface HistoryView {
  readonly at: number;
  /** block, refresh, unblock, expire, … */
  readonly action: string;
  /** a one-line summary: who, why, until when */
  readonly detail: string;
}

export interface StatusView {
  /** "agent http://127.0.0.1:9466", "local store /var/lib/portsnare", "stack portsnare (eu-west-1)" */
  readonly where: string;
  readonly healthy: boolean;
  /** key/value lines in the order a human reads them */
  readonly lines: ReadonlyArray<readonly [string, string]>;
  /** the same facts for --json */
  readonly data: Record<string, unknown>;
}

export type BlockOutcome =
  /** in force now (agent or local store) */
  | { readonly kind: 'applied'; readonly block: BlockView }
  /** asked of the pipeline (stack): the decide and enforce functions apply it */
  | { readonly kind: 'requested'; readonly eventId: string; readonly bus: string };

export type UnblockOutcome =
  | { readonly kind: 'lifted'; readonly target: string }
  | { readonly kind: 'requested'; readonly eventId: string; readonly bus: string };

export interface BlockRequest {
  readonly target: string;
  readonly ttlSeconds?: number;
  readonly reason?: string;
  readonly requestedBy: string;
  /** replace an active block's expiry and note, even when that shortens it (core/policy.ts Sighting.replace) */
  readonly replace?: boolean;
}

export interface Backend {
  readonly where: string;
  status(now: number): Promise<StatusView>;
  /** active blocks, soonest expiry first */
  blocks(now: number): Promise<BlockView[]>;
  /**
   * What each WAF rule blocked over the last hour, one entry per IP set (a stack only; the same
   * answer `blocks(now)` attached to its views, not a second read).
   */
  wafEffect?(now: number): Promise<readonly WafRuleEffect[]>;
  block(request: BlockRequest): Promise<BlockOutcome>;
  unblock(target: string, requestedBy: string): Promise<UnblockOutcome>;
  /** the current record (active or not) and what happened to the target, oldest first */
  history(target: string): Promise<{ current?: BlockView; entries: HistoryView[] }>;
  /**
   * What the Security Hub export sends (issue 21, core/findings.ts): the active blocks, or every
   * record changed since `since` (lifted ones included), each with its change time, and where the
   * findings go. Only a deployed stack has it (`portsnare findings --stack`).
   */
  findingRecords?(now: number, since?: number): Promise<{ target: FindingsTarget; items: Array<{ record: BlockRecord; changedAt: number }> }>;
  close?(): Promise<void>;
}

export function byExpiry(a: BlockView, b: BlockView): number {
  return a.expiresAt - b.expiresAt || a.target.localeCompare(b.target);
}
