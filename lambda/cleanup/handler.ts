/**
 * cleanup — CloudFormation custom resource (Provider framework onEvent) that keeps the ACLs
 * clean of this stack's entries, and of nothing else:
 * - Create: sets up the placement ledger of each ACL (a new stack adopts nothing).
 * - Update: an ACL whose ledger is not set up yet (a stack from before the ledger) adopts its
 *   legacy entries once — portsnare-shaped entries in the OLD range (lambda/README.md, "Stacks
 *   sharing an ACL"); then the entries this stack placed in ACLs no longer listed, or outside the
 *   new range, are removed.
 * - Delete: removes every entry the ledger says this stack placed.
 * The ledger is the truth (core/nacl.ts, "Ownership"): every live row in scope is worked on, one
 * refusal never stops the others. A row whose number the ACL shows holding one of the row's
 * CIDRs is deleted; a row whose number the ACL shows empty is read again a few times (reads are
 * eventually consistent), then deleted by number (NotFound: it was gone); a row whose number
 * holds somebody else's entry is left, and named in the log. Each removed row is freed. An
 * entry of ours that could not be removed (a delete refused, a permission missing) fails the
 * custom resource with every such entry named, so CloudFormation reports it instead of success;
 * another stack's or an operator's entry is never touched.
 * The ACLs and the range come from the resource's properties (`AclIds`, `RuleRange`; numbers
 * arrive as strings), else from PORTSNARE_SETTINGS.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html#provider-framework
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html
 * Env: PORTSNARE_SETTINGS, LEDGER_TABLE_NAME (an organization's enforcement plane) or TABLE_NAME.
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { hostCidrOf, inRange, isExactDeny, liveRow, type NaclEntry, ownEntryTarget, possibleCidrs, RULE_NUMBER_COOL_DOWN_MS } from '../../core/nacl';
import { NACL_RULE_MAX, NACL_RULE_MIN, type PipelineSettings } from '../../core/settings';
import { documentClient } from '../../aws/clients/dynamodb';
import { ec2Client } from '../../aws/clients/ec2';
import { ledgerTableOf } from '../shared/env';
import { type Clock, systemClock } from '../../aws/clock';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { type Observability, powertoolsObservability } from '../../aws/observability';
import { PlacementLedger } from '../../aws/repository';
import { errorName } from '../../aws/retry';
import { loadSettings } from '../shared/settings';

export const PHYSICAL_RESOURCE_ID = 'portsnare-nacl-cleanup';

export interface CleanupDeps {
  readonly nacl: NaclAdapter;
  /** undefined when TABLE_NAME is not set (a stack from before the ledger): nothing is removed */
  readonly ledger: PlacementLedger | undefined;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
  readonly clock: Clock;
}

export interface CleanupResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly Removed: number; readonly Adopted?: number; readonly Left?: string };
}

/** Reads of an ACL that shows none of a row's entries before the row is deleted by number. */
export const CLEANUP_READS = 12;
/** Pause between those reads. */
export const CLEANUP_READ_PAUSE_MS = 1_000;

/** What one ACL's cleanup did: rows removed, and entries left with the reason (by name). */
interface Removal {
  removed: number;
  /** entries of ours that could not be removed: the custom resource fails */
  failed: string[];
  /** rows whose number holds somebody else's entry: logged, not ours to remove */
  left: string[];
}

export interface NaclScope {
  readonly aclIds: readonly string[];
  readonly range: readonly [number, number];
}

/** The ACLs and range a property set names; `fallback` for what it leaves out. Throws naming a bad key. */
export function scopeOf(properties: Record<string, unknown> | undefined, fallback: NaclScope): NaclScope {
  const ids = properties?.AclIds;
  const range = properties?.RuleRange;
  let aclIds = fallback.aclIds;
  if (ids !== undefined) {
    if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && /^acl-[0-9a-f]{8,17}$/.test(id))) {
      throw new Error(`AclIds must be a list of network ACL ids (acl-…), got ${JSON.stringify(ids)}`);
    }
    aclIds = ids as string[];
  }
  let rules = fallback.range;
  if (range !== undefined) {
    const numbers = Array.isArray(range) ? range.map((n) => Number(n)) : [];
    const [first, last] = numbers;
    if (numbers.length !== 2 || first === undefined || last === undefined || !numbers.every((n) => Number.isInteger(n) && n >= NACL_RULE_MIN && n <= NACL_RULE_MAX) || first > last) {
      throw new Error(`RuleRange must be [first, last] rule numbers within ${NACL_RULE_MIN}-${NACL_RULE_MAX}, got ${JSON.stringify(range)}`);
    }
    rules = [first, last];
  }
  return { aclIds, range: rules };
}

export function createHandler(deps: CleanupDeps): Invocation<CloudFormationCustomResourceEvent, CleanupResponse> {
  const { nacl, settings, obs, clock } = deps;
  const configured: NaclScope = { aclIds: settings.nacl.aclIds, range: settings.nacl.ruleRange };

  /** Removes every entry the ledger holds in `aclId` for which `drop(ruleNumber)` is true. */
  async function remove(ledger: PlacementLedger, aclId: string, drop: (ruleNumber: number) => boolean): Promise<Removal> {
    const result: Removal = { removed: 0, failed: [], left: [] };
    const placements = await ledger.list(aclId);
    const rows = placements.filter((p) => p.state !== 'freed' && drop(p.ruleNumber));
    if (rows.length === 0) return result;
    const name = (ruleNumber: number, cidrs: readonly string[]) => `${aclId} rule ${ruleNumber} (${cidrs.join(' or ')})`;
    let entries: NaclEntry[];
    try {
      entries = await nacl.read(aclId);
    } catch (error) {
      if (errorName(error) === 'InvalidNetworkAclID.NotFound') {
        // the ACL is gone, and its entries with it
        for (const row of rows) await ledger.free(aclId, row.ruleNumber, row.cidr, clock.now() + RULE_NUMBER_COOL_DOWN_MS);
        obs.log.warn('network ACL no longer exists; its ledger rows are freed', { aclId, rows: rows.map((r) => r.ruleNumber) });
        return result;
      }
      for (const row of rows) result.failed.push(`${name(row.ruleNumber, possibleCidrs(row))}: ${errorName(error) ?? 'Error'} reading the ACL`);
      return result;
    }
    const at = (ruleNumber: number) => entries.find((e) => !e.egress && e.ruleNumber === ruleNumber);
    // A number shown empty may be a stale read: read again (bounded) before deleting by number.
    for (let read = 1; read < CLEANUP_READS && rows.some((row) => at(row.ruleNumber) === undefined); read++) {
      await clock.sleep(CLEANUP_READ_PAUSE_MS);
      entries = await nacl.read(aclId).catch(() => entries);
    }
    for (const row of rows) {
      const cidrs = possibleCidrs(liveRow(placements, row.ruleNumber));
      const entry = at(row.ruleNumber);
      if (entry && !cidrs.some((cidr) => isExactDeny(entry, row.ruleNumber, cidr))) {
        result.left.push(`${name(row.ruleNumber, cidrs)}: holds ${entry.ruleAction} ${entry.cidrBlock ?? entry.ipv6CidrBlock ?? '?'}, not this stack's`);
        continue;
      }
      try {
        if (await nacl.deleteRule(aclId, row.ruleNumber)) result.removed++;
        await ledger.free(aclId, row.ruleNumber, row.cidr, clock.now() + RULE_NUMBER_COOL_DOWN_MS);
      } catch (error) {
        result.failed.push(`${name(row.ruleNumber, cidrs)}: ${errorName(error) ?? 'Error'}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    obs.log.info('removed portsnare entries', { aclId, removed: result.removed, failed: result.failed, left: result.left });
    if (result.left.length) obs.log.warn('ledger rows whose number holds an entry this stack did not place: left as they are', { aclId, left: result.left });
    return result;
  }

  /** A stack from before the ledger: its portsnare-shaped entries in `range` become its own, once. */
  async function setUp(ledger: PlacementLedger, aclId: string, range: readonly [number, number], adopt: boolean): Promise<number> {
    if (await ledger.isSetUp(aclId)) {
      // listed again after a Delete or an Update that dropped it: claims may be made again
      if (await ledger.isRetired(aclId)) await ledger.markSetUp(aclId, clock.now());
      return 0;
    }
    let adopted = 0;
    // A ledger with rows is in use already (enforce ran with it): nothing there is legacy.
    if (adopt && (await ledger.list(aclId)).length === 0) {
      for (const entry of await nacl.read(aclId)) {
        const target = ownEntryTarget(entry, range);
        if (target === undefined) continue;
        await ledger.confirm(aclId, entry.ruleNumber, hostCidrOf(target, target.includes(':') ? 'ipv6' : 'ipv4'));
        adopted++;
      }
      if (adopted) obs.log.warn('adopted legacy portsnare entries into the placement ledger', { aclId, adopted, range });
    }
    await ledger.markSetUp(aclId, clock.now());
    return adopted;
  }

  return instrument(obs, async (event) => {
    const physicalId = event.RequestType === 'Create' ? PHYSICAL_RESOURCE_ID : event.PhysicalResourceId;
    const ledger = deps.ledger;
    if (!ledger) {
      // Without its ledger the function cannot tell this stack's entries from another's: it
      // removes nothing rather than guess, and never holds up the stack operation.
      obs.log.error('TABLE_NAME is not set: no placement ledger, so no network ACL entry is removed', { requestType: event.RequestType });
      return { PhysicalResourceId: physicalId };
    }
    const current = scopeOf(event.ResourceProperties, configured);
    if (event.RequestType === 'Create') {
      for (const aclId of current.aclIds) await setUp(ledger, aclId, current.range, false);
      return { PhysicalResourceId: physicalId };
    }
    const removals: Removal[] = [];
    let adopted = 0;
    if (event.RequestType === 'Delete') {
      // let go first: a run in flight claims nothing more there (PlacementLedger.retire)
      for (const aclId of current.aclIds) await ledger.retire(aclId, clock.now());
      for (const aclId of current.aclIds) removals.push(await remove(ledger, aclId, () => true));
    } else {
      const old = scopeOf(event.OldResourceProperties, current);
      for (const aclId of new Set([...old.aclIds, ...current.aclIds])) adopted += await setUp(ledger, aclId, old.range, true);
      for (const aclId of old.aclIds) if (!current.aclIds.includes(aclId)) await ledger.retire(aclId, clock.now());
      for (const aclId of old.aclIds) {
        if (!current.aclIds.includes(aclId)) removals.push(await remove(ledger, aclId, () => true));
        else removals.push(await remove(ledger, aclId, (n) => !inRange(n, current.range)));
      }
    }
    const removed = removals.reduce((n, r) => n + r.removed, 0);
    const failed = removals.flatMap((r) => r.failed);
    const left = removals.flatMap((r) => r.left);
    if (failed.length) {
      obs.log.error('could not remove every network ACL entry of this stack', { requestType: event.RequestType, failed });
      // CloudFormation shows this message on the failed resource
      throw new Error(`${failed.length} network ACL entr${failed.length === 1 ? 'y' : 'ies'} of this stack could not be removed: ${failed.join('; ')}`);
    }
    const data = { Removed: removed, ...(event.RequestType === 'Update' ? { Adopted: adopted } : {}), ...(left.length ? { Left: left.join('; ') } : {}) };
    if (event.RequestType === 'Update' && !removed && !adopted && !left.length) return { PhysicalResourceId: physicalId };
    return { PhysicalResourceId: physicalId, Data: data };
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): CleanupDeps {
  const settings = loadSettings(env);
  const ledgerTable = ledgerTableOf(env);
  const ledger = ledgerTable ? new PlacementLedger(documentClient(), ledgerTable) : undefined;
  return { nacl: new NaclAdapter(ec2Client(), clock, obs, Math.random, ledger, settings.nacl.ruleRange), ledger, settings, obs, clock };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
