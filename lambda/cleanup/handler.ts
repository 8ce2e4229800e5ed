/**
 * cleanup — CloudFormation custom resource (Provider framework onEvent). On Delete it removes
 * every portsnare entry (core/nacl.ts's recognition rule: ingress, deny, all protocols, a single
 * host, inside the reserved range) from the configured ACLs, and nothing else, so uninstalling
 * leaves the ACLs as they were. Create and Update do nothing but name the resource.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html#provider-framework
 * Env: PORTSNARE_SETTINGS.
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { hostCidrOf, type NaclChange, ownEntryTarget } from '../../core/nacl';
import { familyOf } from '../../core/address';
import type { PipelineSettings } from '../../core/settings';
import { ec2Client } from '../shared/clients';
import { type Clock, systemClock } from '../shared/clock';
import { NaclAdapter } from '../shared/nacl-adapter';
import { entryPoint, instrument, type Invocation } from '../shared/handler';
import { type Observability, powertoolsObservability } from '../shared/observability';
import { loadSettings } from '../shared/settings';

export const PHYSICAL_RESOURCE_ID = 'portsnare-nacl-cleanup';

export interface CleanupDeps {
  readonly nacl: NaclAdapter;
  readonly settings: PipelineSettings;
  readonly obs: Observability;
}

export interface CleanupResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly Removed: number };
}

export function createHandler(deps: CleanupDeps): Invocation<CloudFormationCustomResourceEvent, CleanupResponse> {
  const { nacl, settings, obs } = deps;
  return instrument(obs, async (event) => {
    const physicalId = event.RequestType === 'Create' ? PHYSICAL_RESOURCE_ID : event.PhysicalResourceId;
    if (event.RequestType !== 'Delete') return { PhysicalResourceId: physicalId };
    const range = settings.nacl.ruleRange;
    let removed = 0;
    for (const acl of await nacl.describe(settings.nacl.aclIds)) {
      const changes: NaclChange[] = [];
      for (const entry of acl.entries) {
        const target = ownEntryTarget(entry, range);
        if (target === undefined) continue;
        const family = familyOf(target);
        changes.push({ op: 'delete', ruleNumber: entry.ruleNumber, cidr: hostCidrOf(target, family), family, target });
      }
      const result = await nacl.apply(acl.aclId, changes);
      removed += result.applied.length;
      obs.log.info('removed portsnare entries', { aclId: acl.aclId, removed: result.applied.map((c) => c.ruleNumber) });
    }
    return { PhysicalResourceId: physicalId, Data: { Removed: removed } };
  });
}

export function defaultDeps(env: NodeJS.ProcessEnv = process.env, obs: Observability = powertoolsObservability(), clock: Clock = systemClock): CleanupDeps {
  return { nacl: new NaclAdapter(ec2Client(), clock, obs), settings: loadSettings(env), obs };
}

export const handler = entryPoint(() => createHandler(defaultDeps()));
