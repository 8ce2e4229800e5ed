/**
 * cleanup — CloudFormation custom resource (Provider framework onEvent) that keeps the ACLs
 * clean of this stack's entries, and of nothing else:
 * - Create: sets up the placement ledger of each ACL (a new stack adopts nothing).
 * - Update: an ACL whose ledger is not set up yet (a stack from before the ledger) adopts its
 *   legacy entries once — portsnare-shaped entries in the OLD range (lambda/README.md, "Stacks
 *   sharing an ACL"); then the entries this stack placed in ACLs no longer listed, or outside the
 *   new range, are removed.
 * - Delete: removes every entry the ledger says this stack placed.
 * An entry is removed only when the ledger holds it and a re-read shows exactly it
 * (lambda/shared/nacl-adapter.ts), so another stack's or an operator's entry is never touched.
 * The ACLs and the range come from the resource's properties (`AclIds`, `RuleRange`; numbers
 * arrive as strings), else from PORTSNARE_SETTINGS.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html#provider-framework
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html
 * Env: PORTSNARE_SETTINGS, LEDGER_TABLE_NAME (an organization's enforcement plane) or TABLE_NAME.
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { familyOf } from '../../core/address';
import { hostCidrOf, inRange, type NaclChange, ownEntryTarget } from '../../core/nacl';
import { NACL_RULE_MAX, NACL_RULE_MIN, type PipelineSettings } from '../../core/settings';
import { documentClient } from '../shared/clients/dynamodb';
import { ec2Client } from '../shared/clients/ec2';
import { type Clock, systemClock } from '../shared/clock';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { NaclAdapter } from '../shared/nacl-adapter';
import { type Observability, powertoolsObservability } from '../shared/observability';
import { PlacementLedger } from '../shared/repository';
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
  readonly Data?: { readonly Removed: number; readonly Adopted?: number };
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

  /** Removes the ledger's entries of `aclId` for which `drop(ruleNumber)` is true. */
  async function remove(ledger: PlacementLedger, aclId: string, drop: (ruleNumber: number) => boolean): Promise<number> {
    const placements = (await ledger.list(aclId)).filter((p) => p.state !== 'freed' && drop(p.ruleNumber));
    const changes: NaclChange[] = [];
    for (const entry of await nacl.read(aclId).catch(() => [])) {
      const target = ownEntryTarget(entry, [NACL_RULE_MIN, NACL_RULE_MAX]);
      if (target === undefined) continue;
      const family = familyOf(target);
      const cidr = hostCidrOf(target, family);
      if (!placements.some((p) => p.ruleNumber === entry.ruleNumber)) continue;
      changes.push({ op: 'delete', ruleNumber: entry.ruleNumber, cidr, family, target });
    }
    const result = await nacl.apply(aclId, changes);
    obs.log.info('removed portsnare entries', { aclId, removed: result.applied.map((c) => c.ruleNumber), refused: result.conflicts.map((c) => c.change.ruleNumber) });
    return result.applied.length;
  }

  /** A stack from before the ledger: its portsnare-shaped entries in `range` become its own, once. */
  async function setUp(ledger: PlacementLedger, aclId: string, range: readonly [number, number], adopt: boolean): Promise<number> {
    if (await ledger.isSetUp(aclId)) return 0;
    let adopted = 0;
    // A ledger with rows is in use already (enforce ran with it): nothing there is legacy.
    if (adopt && (await ledger.list(aclId)).length === 0) {
      for (const entry of await nacl.read(aclId)) {
        const target = ownEntryTarget(entry, range);
        if (target === undefined) continue;
        await ledger.confirm(aclId, entry.ruleNumber, hostCidrOf(target, familyOf(target)));
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
    let removed = 0;
    if (event.RequestType === 'Delete') {
      for (const aclId of current.aclIds) removed += await remove(ledger, aclId, () => true);
      return { PhysicalResourceId: physicalId, Data: { Removed: removed } };
    }
    const old = scopeOf(event.OldResourceProperties, current);
    let adopted = 0;
    for (const aclId of new Set([...old.aclIds, ...current.aclIds])) adopted += await setUp(ledger, aclId, old.range, true);
    for (const aclId of old.aclIds) {
      if (!current.aclIds.includes(aclId)) removed += await remove(ledger, aclId, () => true);
      else removed += await remove(ledger, aclId, (n) => !inRange(n, current.range));
    }
    return removed || adopted ? { PhysicalResourceId: physicalId, Data: { Removed: removed, Adopted: adopted } } : { PhysicalResourceId: physicalId };
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): CleanupDeps {
  const settings = loadSettings(env);
  const ledgerTable = env.LEDGER_TABLE_NAME || env.TABLE_NAME;
  const ledger = ledgerTable ? new PlacementLedger(documentClient(), ledgerTable) : undefined;
  return { nacl: new NaclAdapter(ec2Client(), clock, obs, Math.random, ledger, settings.nacl.ruleRange), ledger, settings, obs, clock };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
