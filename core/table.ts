/**
 * The desired-state table's contract, in one place: key builders, the sparse index, attribute
 * names and retention. The repository (aws/repository.ts) is the one code path that
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
 * - change log (issue 20): every save of a block record also stamps `chgKey` / `chgAt`, the keys
 *   of the sparse GSI `changes` (projection INCLUDE `CHANGES_PROJECTION`). `chgKey` is `A` while
 *   the record is active, `L#<YYYY-MM-DD>` (the UTC day of the change) once lifted; `chgAt` is the
 *   change time (epoch ms, 13 digits zero-padded) `#` the target, so a partition sorts by time and
 *   each record is in it once. A record's entry is its LAST change: a re-block or a lift moves it.
 * - the change-log backfill (records written before the stamp existed): pk `META`, sk
 *   `CHANGES_BACKFILL`; while the backfill runs it holds its progress and no `chgKey`; once done it
 *   gets `chgKey` `M`, `chgAt` `done`, so it is on the `changes` index itself and a plane that may
 *   only Query that index can read it.
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
export const PLACEMENT_ATTRIBUTES = { cidr: 'cidr', state: 'state', maybe: 'maybe', previous: 'previous', heldUntil: 'heldUntil', ruleNumber: 'ruleNumber', placedAt: 'placedAt' } as const;

/** The sparse GSI of the change log: partition `chgKey`, sort `chgAt` (both strings). */
export const CHANGES_INDEX = 'changes';
export const CHANGE_KEY_ATTRIBUTE = 'chgKey';
export const CHANGE_AT_ATTRIBUTE = 'chgAt';
/** `chgKey` of every active record */
export const ACTIVE_CHANGE_KEY = 'A';
const LIFTED_CHANGE_KEY_PREFIX = 'L#';
/** What the `changes` index projects besides the keys: what enforcement needs, nothing more (core/policy.ts EnforcementRecord). */
export const CHANGES_PROJECTION = ['target', 'lastSeen', 'blockedAt', 'expiresAt', 'active', 'reason'] as const;
/** digits of the epoch-ms part of `chgAt`: every time from 1970 to the year 2286 */
const CHANGE_TIME_DIGITS = 13;
const MAX_CHANGE_TIME = 10 ** CHANGE_TIME_DIGITS - 1;

/** The `chgKey` of a record lifted at `at` (epoch ms): `L#` and the UTC day. */
export function liftedChangeKey(at: number): string {
  return `${LIFTED_CHANGE_KEY_PREFIX}${new Date(changeTime(at)).toISOString().slice(0, 10)}`;
}

/** The zero-padded time part of `chgAt`: a string that sorts as the time does. */
export function changeTimeKey(at: number): string {
  return String(changeTime(at)).padStart(CHANGE_TIME_DIGITS, '0');
}

/** The `chgAt` of a record changed at `at` (epoch ms): `1764417600000#203.0.113.7`-like, sorting by time. */
export function changeSortKey(at: number, target: string): string {
  return `${changeTimeKey(at)}#${target}`;
}

/** The time and target a `chgAt` holds, or undefined when it is not one. */
export function parseChangeSortKey(sk: unknown): { at: number; target: string } | undefined {
  if (typeof sk !== 'string') return undefined;
  const hash = sk.indexOf('#');
  if (hash !== CHANGE_TIME_DIGITS) return undefined;
  const digits = sk.slice(0, hash);
  if (!/^[0-9]+$/.test(digits)) return undefined;
  const target = sk.slice(hash + 1);
  if (target.length === 0) return undefined;
  return { at: Number(digits), target };
}

function changeTime(at: number): number {
  if (!Number.isInteger(at) || at < 0 || at > MAX_CHANGE_TIME) throw new Error(`change time ${at} is not an epoch-ms integer from 0 to ${MAX_CHANGE_TIME}`);
  return at;
}

/** The backfill's item: its progress, then (chgKey `M`, chgAt `done`) the marker on the `changes` index. */
export const BACKFILL_KEY: TableKey = { pk: 'META', sk: 'CHANGES_BACKFILL' };
export const BACKFILL_MARKER_CHANGE_KEY = 'M';
export const BACKFILL_MARKER_CHANGE_AT = 'done';

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
