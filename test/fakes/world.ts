/**
 * The whole cloud pipeline on fakes: a simulated clock, DynamoDB, SQS FIFO, EC2 NACLs and WAFV2
 * IP sets (each a stateful fake behind aws-sdk-client-mock), and the real handlers wired to them
 * through their factories. Used by handler tests, the convergence property and the benchmark.
 */
import type { SQSEvent } from 'aws-lambda';
import { PipelineSettingsSchema, type PipelineSettings, type PipelineSettingsInput, type WafSetRef } from '../../core/settings';
import { createHandler as createCleanup } from '../../lambda/cleanup/handler';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler as createDecide } from '../../lambda/decide/handler';
import { createHandler as createEnforce } from '../../lambda/enforce/handler';
import { createHandler as createExpiry } from '../../lambda/expiry/handler';
import { createHandler as createReconcile } from '../../lambda/reconcile/handler';
import type { EnforceSummary } from '../../lambda/shared/enforcer';
import { NaclAdapter } from '../../aws/nacl-adapter';
import { EnforceQueue } from '../../lambda/shared/queue';
import { BlockRepository, PlacementLedger } from '../../aws/repository';
import { UpdatePacer, WafAdapter } from '../../aws/waf-adapter';
import { SimClock } from './clock';
import { FakeDynamoDb } from './dynamodb';
import { FakeEc2 } from './ec2';
import { RecordingObservability } from './observability';
import { deliverFifo, FakeSqs } from './sqs';
import { FakeWafv2 } from './wafv2';

export const ACL_A = 'acl-0a1b2c3d4e5f60001';
export const ACL_B = 'acl-0a1b2c3d4e5f60002';
export const SET_V4: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'portsnare-v4-0', id: '11111111-1111-4111-8111-111111111111' };
export const SET_V4_2: WafSetRef = { scope: 'REGIONAL', family: 'ipv4', name: 'portsnare-v4-1', id: '22222222-2222-4222-8222-222222222222' };
export const SET_V6: WafSetRef = { scope: 'REGIONAL', family: 'ipv6', name: 'portsnare-v6-0', id: '66666666-6666-4666-8666-666666666666' };

/** Settings for tests: TEST-NET ranges may be blocked (they are "reserved" special ranges); IPv6 blocked per address unless `policy.ipv6BlockPrefix` is given. */
export function testSettings(overrides: Partial<PipelineSettingsInput> = {}): PipelineSettings {
  return PipelineSettingsSchema.parse({
    guard: {
      allowlist: ['198.51.100.250/32'],
      protectedCidrs: ['10.0.0.0/16'],
      blockableSpecialCidrs: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'],
    },
    nacl: { aclIds: [ACL_A, ACL_B], ruleRange: [10, 60], quotaPerDirection: 20 },
    waf: { sets: [SET_V4, SET_V6] },
    ...overrides,
    // the handler tests, the wire spec and the convergence runs are written for one block per
    // address; the IPv6 prefix policy's tests ask for their prefix (test/wire/prefix.test.ts)
    policy: { ipv6BlockPrefix: 128, ...overrides.policy },
  });
}

export interface WorldOptions {
  readonly settings?: PipelineSettings;
  readonly random?: () => number;
  readonly start?: number;
  readonly ipv6Acls?: boolean;
  /** items per DynamoDB Query page */
  readonly pageSize?: number;
  /** the clock (a subclass may run other work while a handler sleeps) */
  readonly clock?: SimClock;
}

export class World {
  readonly clock: SimClock;
  readonly obs = new RecordingObservability();
  readonly ddb: FakeDynamoDb;
  readonly sqs: FakeSqs;
  readonly ec2: FakeEc2;
  readonly waf: FakeWafv2;
  readonly settings: PipelineSettings;
  readonly repo: BlockRepository;
  readonly decide: (event: unknown) => Promise<string[]>;
  readonly enforce: (event: SQSEvent) => Promise<EnforceSummary>;
  readonly expiry: () => Promise<{ lifted: number }>;
  readonly reconcile: () => Promise<void>;
  readonly cleanup: ReturnType<typeof createCleanup>;
  private eventSeq = 0;

  constructor(options: WorldOptions = {}) {
    const random = options.random ?? Math.random;
    this.clock = options.clock ?? new SimClock(options.start);
    this.ddb = new FakeDynamoDb('portsnare', undefined, options.pageSize);
    this.settings = options.settings ?? testSettings();
    this.sqs = new FakeSqs(this.clock);
    this.ec2 = new FakeEc2(this.settings.nacl.quotaPerDirection, random);
    this.waf = new FakeWafv2(this.clock, random);
    for (const aclId of this.settings.nacl.aclIds) this.ec2.addAcl(aclId, { ipv6: options.ipv6Acls ?? true });
    for (const ref of this.settings.waf.sets) this.waf.addSet(ref);
    this.repo = new BlockRepository(this.ddb.client, this.ddb.tableName);
    const queue = new EnforceQueue(this.sqs.client, this.sqs.queueUrl);
    const { clock, obs, settings, repo } = this;
    const ledger = new PlacementLedger(this.ddb.client, this.ddb.tableName);
    const nacl = new NaclAdapter(this.ec2.client, clock, obs, random, ledger, settings.nacl.ruleRange);
    const waf = new WafAdapter({ REGIONAL: this.waf.client, CLOUDFRONT: this.waf.client }, clock, obs, new UpdatePacer(), random);
    this.decide = createDecide({ repo, queue, burst: new BurstGate(this.ddb.client, this.ddb.tableName, clock, random), settings, obs, clock, random });
    this.enforce = createEnforce({ repo, nacl, waf, settings, obs, clock, sqs: this.sqs.client });
    this.expiry = createExpiry({ repo, queue, obs, clock });
    this.reconcile = createReconcile({ queue, obs, clock });
    this.cleanup = createCleanup({ nacl, ledger, settings, obs, clock });
  }

  /** An EventBridge `Scan Detected` event for `attacker`. */
  scanEvent(attacker: string, options: { handshake?: boolean; id?: string; sensorId?: string; source?: string } = {}): Record<string, unknown> {
    const at = new Date(this.clock.now()).toISOString();
    return {
      version: '0',
      id: options.id ?? `evt-${++this.eventSeq}`,
      'detail-type': 'Scan Detected',
      source: options.source ?? 'portsnare.sensor',
      account: '123456789012',
      time: at,
      region: 'eu-west-1',
      resources: [],
      detail: {
        version: 1,
        sensorId: options.sensorId ?? 'i-0123456789abcdef0',
        attacker,
        probes: [{ protocol: 'tcp', port: 23, kind: 'connect' }],
        probeCount: 3,
        handshake: options.handshake ?? true,
        firstSeen: at,
        lastSeen: at,
      },
    };
  }

  /**
   * Delivers the queue to the enforce function until it is empty, as the FIFO event source would:
   * one batch at a time; a batch is deleted when the function returns, and stays in flight when
   * it throws, until its visibility timeout is over (the queue's 360 s, or what the function set
   * with ChangeMessageVisibility) — the clock is moved on to then, as real time would pass.
   * Returns the number of invocations and failures, and the time spent waiting for redeliveries.
   */
  async drain(maxInvocations = 1000): Promise<{ invocations: number; failures: number; waitedMs: number }> {
    return deliverFifo(this.sqs, this.clock, (event) => this.enforce(event), { maxInvocations });
  }

  /** What the enforcers hold: WAF addresses per set and portsnare's entries per ACL. */
  wafAddresses(): Set<string> {
    return new Set(this.settings.waf.sets.flatMap((ref) => this.waf.addresses(ref)));
  }
}
