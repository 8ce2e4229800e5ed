/**
 * Host and cloud decide alike (ARCHITECTURE.md "The decision service"): one sequence of inputs —
 * scans, a redelivery, an unverified probe, repeat offences, manual blocks with and without
 * replace, refusals of allowlisted, private, own and too-wide targets, the burst breaker — goes
 * through the real host pipeline (sensor/local/pipeline.ts over a real FileStore in a temporary
 * directory) and through the real decide handler (lambda/decide/handler.ts, the real SDK v3
 * Document client against dynalite, test/wire/dynalite.ts). After every step each side's outcome
 * and stored record are compared, field by field, with the expectation written in the step.
 *
 * The expectations are the documented policy (docs/agent-config.md, the `policy` keys and their
 * defaults; README.md, the `block` row of the command table), written out here by hand, not computed by the code under test: a first
 * offence lasts baseTtlSeconds (3600), a repeat within the offence window twice as long, more
 * hits during an active block refresh it without moving its expiry, an event counted once, a
 * manual block counts no hits, is never held by the breaker, and a re-block never shortens a
 * block nor drops its note unless replace. The cloud's record is read with the low-level client
 * (GetItem, https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html),
 * not through the repository; the host's is read again from disk at the end. A breaker refusal
 * fails the decide invocation so that Lambda retries the event
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html): the
 * cloud's "breaker-open" is that failure.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NeverBlockGuard } from '../../core/guard';
import { BurstGate } from '../../lambda/decide/burst';
import { createHandler } from '../../lambda/decide/handler';
import { EnforceQueue } from '../../lambda/shared/queue';
import { BlockRepository } from '../../aws/repository';
import { LocalPipeline, type LocalDecision } from '../../sensor/local/pipeline';
import { FileStore } from '../../sensor/local/store';
import { SimClock } from '../fakes/clock';
import { scanDetectedEvent } from '../fakes/events';
import { RecordingObservability } from '../fakes/observability';
import { FakeSqs } from '../fakes/sqs';
import { testSettings } from '../fakes/world';
import { scanEvent as hostScan, tempDir } from '../sensor/helpers';
import { type LocalTable, startDynalite } from './dynalite';

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const DAY = 24 * HOUR;
/** 5 s into a minute */
const T0 = Date.parse('2026-11-21T10:00:05.000Z');
/** this host's own address: a protected network for the guard, on both sides */
const OWN = '192.0.2.10';

/** one guard and one policy, given to both sides (the cloud's through PORTSNARE_SETTINGS' shape) */
const settings = testSettings({
  guard: { allowlist: ['198.51.100.250/32'], protectedCidrs: ['10.0.0.0/16', `${OWN}/32`], blockableSpecialCidrs: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'] },
  policy: { burstLimitPerMinute: 2 },
});

type Outcome = 'blocked' | 'refreshed' | 'unchanged' | 'refused' | 'breaker-open';

interface Expected {
  readonly outcome: Outcome;
  /** the target's record afterwards; undefined: none stored */
  readonly record?: {
    readonly active: true;
    readonly reason: string;
    readonly offences: number;
    readonly hitCount: number;
    readonly blockedAt: number;
    readonly expiresAt: number;
    readonly firstSeen?: number;
    readonly lastSeen?: number;
    /** the note each side's own request wording gives (the host's names the requester) */
    readonly hostNote?: string;
    readonly cloudNote?: string;
  };
}

type Input =
  | { readonly kind: 'scan'; readonly id: string; readonly attacker: string; readonly probeCount?: number; readonly handshake?: boolean }
  | { readonly kind: 'manual'; readonly id: string; readonly target: string; readonly ttlSeconds: number; readonly why: string; readonly replace?: boolean };

interface Step {
  readonly name: string;
  readonly at: number;
  readonly input: Input;
  readonly expected: Expected;
}

const A = '203.0.113.7';
const C = '203.0.113.64/26';
const M = Date.parse('2026-11-21T10:10:00.000Z');
const firstBlock = { active: true, reason: 'sensor', offences: 1, blockedAt: T0, expiresAt: T0 + HOUR, firstSeen: T0 } as const;

const steps: Step[] = [
  { name: 'a proven scan: first offence, base TTL', at: T0, input: { kind: 'scan', id: 'e1', attacker: A }, expected: { outcome: 'blocked', record: { ...firstBlock, hitCount: 3, lastSeen: T0 } } },
  { name: 'more hits during the block: refreshed, expiry kept', at: T0 + 60 * SECOND, input: { kind: 'scan', id: 'e2', attacker: A }, expected: { outcome: 'refreshed', record: { ...firstBlock, hitCount: 6, lastSeen: T0 + 60 * SECOND } } },
  { name: 'the same event delivered again: counted once', at: T0 + 61 * SECOND, input: { kind: 'scan', id: 'e2', attacker: A }, expected: { outcome: 'unchanged', record: { ...firstBlock, hitCount: 6, lastSeen: T0 + 60 * SECOND } } },
  { name: 'an unverified probe (no handshake): nothing stored', at: T0 + 62 * SECOND, input: { kind: 'scan', id: 'e3', attacker: '203.0.113.8', handshake: false }, expected: { outcome: 'unchanged' } },
  { name: 'an allowlisted scanner is refused', at: T0 + 63 * SECOND, input: { kind: 'scan', id: 'e4', attacker: '198.51.100.250' }, expected: { outcome: 'refused' } },
  { name: 'a private scanner is refused', at: T0 + 64 * SECOND, input: { kind: 'scan', id: 'e5', attacker: '192.168.1.20' }, expected: { outcome: 'refused' } },
  { name: 'our own address is refused', at: T0 + 65 * SECOND, input: { kind: 'scan', id: 'e6', attacker: OWN }, expected: { outcome: 'refused' } },
  {
    name: 'a manual block of a CIDR for 7 days: no hits',
    at: T0 + 120 * SECOND,
    input: { kind: 'manual', id: 'm1', target: C, ttlSeconds: 7 * 86400, why: 'known bad' },
    expected: { outcome: 'blocked', record: { active: true, reason: 'manual', offences: 1, hitCount: 0, blockedAt: T0 + 120 * SECOND, expiresAt: T0 + 120 * SECOND + 7 * DAY, hostNote: 'requested by ops: known bad', cloudNote: 'known bad' } },
  },
  {
    name: 'a manual re-block for 1 hour without replace: the week and the note stay, the new note is added, no new offence',
    at: T0 + 180 * SECOND,
    input: { kind: 'manual', id: 'm2', target: C, ttlSeconds: 3600, why: 'still bad' },
    expected: {
      outcome: 'blocked',
      record: { active: true, reason: 'manual', offences: 1, hitCount: 0, blockedAt: T0 + 120 * SECOND, expiresAt: T0 + 120 * SECOND + 7 * DAY, hostNote: 'requested by ops: known bad; again requested by ops: still bad', cloudNote: 'known bad; again still bad' },
    },
  },
  {
    name: 'a manual re-block for 1 hour with replace: shortened, its note replaces the old one',
    at: T0 + 240 * SECOND,
    input: { kind: 'manual', id: 'm3', target: C, ttlSeconds: 3600, why: 'an hour is enough', replace: true },
    expected: { outcome: 'blocked', record: { active: true, reason: 'manual', offences: 1, hitCount: 0, blockedAt: T0 + 240 * SECOND, expiresAt: T0 + 240 * SECOND + HOUR, hostNote: 'requested by ops: an hour is enough', cloudNote: 'an hour is enough' } },
  },
  { name: 'a manual block of an allowlisted address is refused', at: T0 + 241 * SECOND, input: { kind: 'manual', id: 'm4', target: '198.51.100.250', ttlSeconds: 3600, why: 'x' }, expected: { outcome: 'refused' } },
  { name: 'a manual block of a private range is refused', at: T0 + 242 * SECOND, input: { kind: 'manual', id: 'm5', target: '192.168.0.0/24', ttlSeconds: 3600, why: 'x' }, expected: { outcome: 'refused' } },
  { name: 'a manual block of our own address is refused', at: T0 + 243 * SECOND, input: { kind: 'manual', id: 'm6', target: OWN, ttlSeconds: 3600, why: 'x' }, expected: { outcome: 'refused' } },
  { name: 'a manual block wider than /16 is refused by the policy', at: T0 + 244 * SECOND, input: { kind: 'manual', id: 'm7', target: '32.0.0.0/3', ttlSeconds: 3600, why: 'x' }, expected: { outcome: 'refused' } },
  { name: 'a manual block longer than 30 days is refused by the policy', at: T0 + 245 * SECOND, input: { kind: 'manual', id: 'm8', target: '203.0.113.99', ttlSeconds: 365 * 86400, why: 'x' }, expected: { outcome: 'refused' } },
  // the burst breaker, limit 2 a minute, in a minute of its own (the host's sliding minute and the cloud's calendar minute agree there)
  { name: 'breaker: first new block of the minute', at: M + SECOND, input: { kind: 'scan', id: 'b1', attacker: '203.0.113.21' }, expected: { outcome: 'blocked', record: { active: true, reason: 'sensor', offences: 1, hitCount: 3, blockedAt: M + SECOND, expiresAt: M + SECOND + HOUR } } },
  { name: 'breaker: second new block of the minute', at: M + 2 * SECOND, input: { kind: 'scan', id: 'b2', attacker: '203.0.113.22' }, expected: { outcome: 'blocked', record: { active: true, reason: 'sensor', offences: 1, hitCount: 3, blockedAt: M + 2 * SECOND, expiresAt: M + 2 * SECOND + HOUR } } },
  { name: 'breaker: a third new attacker in the minute is held back', at: M + 3 * SECOND, input: { kind: 'scan', id: 'b3', attacker: '203.0.113.23' }, expected: { outcome: 'breaker-open' } },
  { name: 'breaker: more hits of a blocked attacker still count', at: M + 4 * SECOND, input: { kind: 'scan', id: 'b4', attacker: '203.0.113.21' }, expected: { outcome: 'refreshed', record: { active: true, reason: 'sensor', offences: 1, hitCount: 6, blockedAt: M + SECOND, expiresAt: M + SECOND + HOUR } } },
  {
    name: 'breaker: a manual block is never held back',
    at: M + 5 * SECOND,
    input: { kind: 'manual', id: 'b5', target: '203.0.113.24', ttlSeconds: 600, why: 'now' },
    expected: { outcome: 'blocked', record: { active: true, reason: 'manual', offences: 1, hitCount: 0, blockedAt: M + 5 * SECOND, expiresAt: M + 5 * SECOND + 600 * SECOND, hostNote: 'requested by ops: now', cloudNote: 'now' } },
  },
  { name: 'breaker: the held event, retried the next minute, blocks', at: M + 65 * SECOND, input: { kind: 'scan', id: 'b3', attacker: '203.0.113.23' }, expected: { outcome: 'blocked', record: { active: true, reason: 'sensor', offences: 1, hitCount: 3, blockedAt: M + 65 * SECOND, expiresAt: M + 65 * SECOND + HOUR } } },
  {
    name: 'a repeat offence after the first block ended: offence 2, twice the TTL, hits add up',
    at: T0 + 2 * HOUR,
    input: { kind: 'scan', id: 'e7', attacker: A },
    expected: { outcome: 'blocked', record: { active: true, reason: 'sensor', offences: 2, hitCount: 9, blockedAt: T0 + 2 * HOUR, expiresAt: T0 + 2 * HOUR + 2 * HOUR, firstSeen: T0, lastSeen: T0 + 2 * HOUR } },
  },
];

let now = T0;
let table: LocalTable;
let dir: { path: string; remove: () => void };
let store: FileStore;
let host: LocalPipeline;
let cloud: (event: unknown) => Promise<string[]>;
const clock = new SimClock(T0);

beforeAll(async () => {
  table = await startDynalite('portsnare-parity');
  const sqs = new FakeSqs(clock);
  cloud = createHandler({
    repo: new BlockRepository(table.doc, table.tableName),
    queue: new EnforceQueue(sqs.client, sqs.queueUrl),
    burst: new BurstGate(table.doc, table.tableName, clock),
    settings,
    obs: new RecordingObservability(),
    clock,
  });
  dir = tempDir('decision-parity');
  store = new FileStore(dir.path, { now: () => now });
  await store.load();
  // log-only (no enforcer): the decisions are what is compared
  host = new LocalPipeline({ store, policy: settings.policy, guard: new NeverBlockGuard(settings.guard), now: () => now });
});
afterAll(async () => {
  await store?.close();
  dir?.remove();
  await table?.stop();
});

function hostOutcome(decision: LocalDecision): Outcome {
  if (decision.action === 'refused') return decision.why.startsWith('burst circuit breaker open') ? 'breaker-open' : 'refused';
  return ({ block: 'blocked', refresh: 'refreshed', ignore: 'unchanged' } as const)[decision.action];
}

async function runHost(input: Input): Promise<Outcome> {
  if (input.kind === 'scan') {
    const at = new Date(now).toISOString();
    const event = hostScan(input.attacker, { probeCount: input.probeCount ?? 3, handshake: input.handshake ?? true, firstSeen: at, lastSeen: at });
    return hostOutcome(await host.handle(event, input.id));
  }
  // as the CLI and the control API hand it in (bin/commands/local.ts): the reason travels with the requester
  return hostOutcome(await host.block(input.target, { ttlSeconds: input.ttlSeconds, requestedBy: `ops: ${input.why}`, ...(input.replace ? { replace: true } : {}) }));
}

async function runCloud(input: Input): Promise<Outcome> {
  const event =
    input.kind === 'scan'
      ? scanDetectedEvent({ id: input.id, attacker: input.attacker, at: now, probeCount: input.probeCount ?? 3, handshake: input.handshake ?? true })
      : {
          version: '0', id: input.id, 'detail-type': 'Block Requested', source: 'portsnare.cli', account: '123456789012', region: 'eu-west-1', resources: [],
          time: new Date(now).toISOString(),
          detail: { version: 1, target: input.target, ttlSeconds: input.ttlSeconds, reason: input.why, requestedBy: 'ops', ...(input.replace ? { replace: true } : {}) },
        };
  try {
    const outcomes = await cloud(event);
    expect(outcomes).toHaveLength(1);
    return outcomes[0] as Outcome;
  } catch (error) {
    const outcomes = (error as { outcomes?: string[] }).outcomes;
    if ((error as Error).name === 'CircuitBreakerOpen' && outcomes?.length === 1) return outcomes[0] as Outcome;
    throw error;
  }
}

function targetOf(input: Input): string {
  return input.kind === 'scan' ? input.attacker : input.target;
}

async function cloudRecord(target: string): Promise<Record<string, unknown> | undefined> {
  const out = await table.raw.send(
    new GetItemCommand({ TableName: table.tableName, Key: { pk: { S: `BLOCK#${target}` }, sk: { S: 'STATE' } }, ConsistentRead: true }),
  );
  return out.Item ? unmarshall(out.Item) : undefined;
}

function expectRecord(side: 'host' | 'cloud', actual: Record<string, unknown> | undefined, expected: Expected['record']): void {
  if (!expected) {
    expect(actual, `${side}: no record`).toBeUndefined();
    return;
  }
  const { hostNote, cloudNote, ...fields } = expected;
  expect(actual, `${side}: the record`).toMatchObject(fields);
  const note = side === 'host' ? hostNote : cloudNote;
  if (note !== undefined) expect(actual?.['note'], `${side}: the note`).toBe(note);
}

describe('one decision, host and cloud', () => {
  for (const step of steps) {
    it(step.name, async () => {
      now = step.at;
      clock.set(step.at);
      const target = targetOf(step.input);
      expect(await runHost(step.input), 'host outcome').toBe(step.expected.outcome);
      expect(await runCloud(step.input), 'cloud outcome').toBe(step.expected.outcome);
      expectRecord('host', store.get(target) as unknown as Record<string, unknown> | undefined, step.expected.record);
      expectRecord('cloud', await cloudRecord(target), step.expected.record);
    });
  }

  it('the host\'s journal holds the same records once read again from disk', async () => {
    await store.flush();
    const reopened = new FileStore(dir.path, { now: () => now, readOnly: true });
    await reopened.load();
    const last = new Map<string, Expected['record']>();
    for (const step of steps) if (step.expected.record) last.set(targetOf(step.input), step.expected.record);
    expect(reopened.list().map((r) => r.target).sort()).toEqual([...last.keys()].sort());
    for (const [target, expected] of last) {
      expectRecord('host', reopened.get(target) as unknown as Record<string, unknown>, expected);
      expectRecord('cloud', await cloudRecord(target), expected);
    }
    await reopened.close();
  });
});
