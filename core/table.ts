/**
 * The desired-state table's contract, in one place: key builders, the sparse index, attribute
 * names and retention. The repository (lambda/shared/repository.ts) is the one code path that
 * reads and writes it; the command line's stack backend goes through that repository too.
 *
 * - block record: pk `BLOCK#<target>`, sk `STATE`, the BlockRecord fields, `version` for
 *   optimistic concurrency, `activeKey` = "ACTIVE" while active (the sparse GSI `active`, sort
 *   key `expiresAt`), `ttl` (epoch seconds) only once lifted, so DynamoDB may delete old history;
 * - history: pk `BLOCK#<target>`, sk `HIST#<iso time>#<action>`, `ttl` 90 days on;
 * - burst counter: pk `BURST`, sk `MINUTE#<epoch ms of the minute>`, `count`;
 * - NACL placement ledger (core/nacl.ts Placement): pk `NACL#<aclId>`, sk `RULE#<rule number,
 *   5 digits>`, `cidr`, `state` (pending | confirmed | freed), `maybe` (the other CIDRs of ours
 *   that may be there: writes whose answer was lost; `previous`, one CIDR, in rows written before
 *   it), `heldUntil`, and `ttl` once freed; sk `LEDGER` marks an ACL whose ledger is set up (legacy entries adopted or none).
 */
export const TABLE_PARTITION_KEY = 'pk';
export const TABLE_SORT_KEY = 'sk';
/** DynamoDB's time-to-live attribute (epoch seconds). */
export const TABLE_TTL_ATTRIBUTE = 'ttl';
export const VERSION_ATTRIBUTE = 'version';
export const ACTIVE_INDEX = 'active';
export const ACTIVE_KEY_ATTRIBUTE = 'activeKey';
export const ACTIVE_KEY = 'ACTIVE';
/** The sort key of the `active` index. */
export const EXPIRES_AT_ATTRIBUTE = 'expiresAt';
export const STATE_SK = 'STATE';
export const HISTORY_SK_PREFIX = 'HIST#';
export const HISTORY_RETENTION_SECONDS = 90 * 86400;
const BLOCK_PK_PREFIX = 'BLOCK#';
const BURST_PK = 'BURST';
const MINUTE_SK_PREFIX = 'MINUTE#';
const NACL_PK_PREFIX = 'NACL#';
/** the sort key prefix of one ledger row */
export const NACL_RULE_SK_PREFIX = 'RULE#';
const NACL_LEDGER_SK = 'LEDGER';
/** ledger attributes */
export const PLACEMENT_ATTRIBUTES = { cidr: 'cidr', state: 'state', maybe: 'maybe', previous: 'previous', heldUntil: 'heldUntil', ruleNumber: 'ruleNumber' } as const;

export interface TableKey {
  readonly pk: string;
  readonly sk: string;
}

/** The partition of one target: its state record and its history. */
export function blockPartition(target: string): string {
  return `${BLOCK_PK_PREFIX}${target}`;
}

/** The key of a target's state record. */
export function stateKey(target: string): TableKey {
  return { pk: blockPartition(target), sk: STATE_SK };
}

/** The key of one history entry. */
export function historyKey(target: string, at: number, action: string): TableKey {
  return { pk: blockPartition(target), sk: `${HISTORY_SK_PREFIX}${new Date(at).toISOString()}#${action}` };
}

/** The burst counter of the minute starting at `minuteStart` (epoch ms). */
export function burstKey(minuteStart: number): TableKey {
  return { pk: BURST_PK, sk: `${MINUTE_SK_PREFIX}${minuteStart}` };
}

/** The burst counter's attribute: new blocks counted in its minute. */
export const BURST_COUNT_ATTRIBUTE = 'count';

/** The claim of one target's slot in the minute starting at `minuteStart`: under the minute's counter. */
export function burstClaimKey(minuteStart: number, target: string): TableKey {
  const counter = burstKey(minuteStart);
  return { pk: counter.pk, sk: `${counter.sk}#${target}` };
}

/** The target a partition key names, or undefined when it is not a block partition. */
export function targetOfPartition(pk: unknown): string | undefined {
  return typeof pk === 'string' && pk.startsWith(BLOCK_PK_PREFIX) ? pk.slice(BLOCK_PK_PREFIX.length) : undefined;
}

/**
 * Whether a table item is a block record: key `BLOCK#<target>` / `STATE` and a `target` attribute
 * equal to the key's. Anything else on the `active` index (an item of another kind with an
 * `activeKey`, written by whatever could write the table) is not desired state.
 */
export function isBlockRecordItem(item: Readonly<Record<string, unknown>>): boolean {
  const target = targetOfPartition(item[TABLE_PARTITION_KEY]);
  return target !== undefined && target.length > 0 && item[TABLE_SORT_KEY] === STATE_SK && item.target === target;
}

/** The time and action a history sort key holds, or undefined when it is not one. */
export function parseHistorySortKey(sk: unknown): { at: string; action: string } | undefined {
  if (typeof sk !== 'string' || !sk.startsWith(HISTORY_SK_PREFIX)) return undefined;
  const rest = sk.slice(HISTORY_SK_PREFIX.length);
  const hash = rest.lastIndexOf('#');
  if (hash < 0) return undefined;
  return { at: rest.slice(0, hash), action: rest.slice(hash + 1) };
}

/** The ledger partition of one network ACL. */
export function naclPartition(aclId: string): string {
  return `${NACL_PK_PREFIX}${aclId}`;
}

/** The ledger row of one rule number of one ACL (zero-padded, so rows sort by number). */
export function naclRuleKey(aclId: string, ruleNumber: number): TableKey {
  return { pk: naclPartition(aclId), sk: `${NACL_RULE_SK_PREFIX}${String(ruleNumber).padStart(5, '0')}` };
}

/** The row that says an ACL's ledger is set up. */
export function naclLedgerKey(aclId: string): TableKey {
  return { pk: naclPartition(aclId), sk: NACL_LEDGER_SK };
}

/** The rule number a ledger sort key names, or undefined when it is not a ledger row. */
export function ruleNumberOfSortKey(sk: unknown): number | undefined {
  if (typeof sk !== 'string' || !sk.startsWith(NACL_RULE_SK_PREFIX)) return undefined;
  const n = Number(sk.slice(NACL_RULE_SK_PREFIX.length));
  return Number.isInteger(n) ? n : undefined;
}
