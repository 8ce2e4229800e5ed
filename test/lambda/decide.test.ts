import { describe, expect, it } from 'vitest';
import { World } from '../fakes/world';

describe('decide handler', () => {
  it('turns a Scan Detected event into an active record and one enforce wake-up', async () => {
    const world = new World();
    const outcome = await world.decide(world.scanEvent('203.0.113.7'));
    expect(outcome).toEqual(['blocked']);
    const stored = await world.repo.get('203.0.113.7');
    expect(stored?.record).toMatchObject({ target: '203.0.113.7', active: true, offences: 1, reason: 'sensor' });
    expect(world.ddb.item('BLOCK#203.0.113.7', 'STATE')).toMatchObject({ activeKey: 'ACTIVE', version: 1 });
    expect(world.sqs.depth).toBe(1);
    expect(world.obs.metric('Detections')).toBe(1);
  });

  it('drops a malformed event without throwing, logging the field at fault', async () => {
    const world = new World();
    const event = world.scanEvent('203.0.113.7');
    (event.detail as Record<string, unknown>).probes = [{ protocol: 'tcp', port: 70000, kind: 'connect' }];
    await expect(world.decide(event)).resolves.toEqual(['malformed']);
    expect(world.obs.metric('MalformedEvents')).toBe(1);
    const line = world.obs.logged('malformed event dropped')[0];
    expect(String(line?.attributes.reason)).toContain('probes.0.port');
    expect(world.ddb.items.size).toBe(0);
    expect(world.sqs.depth).toBe(0);
  });

  it('drops events that are not objects at all', async () => {
    const world = new World();
    for (const junk of [null, 42, 'text', [], { id: 'x' }]) await expect(world.decide(junk)).resolves.toEqual(['malformed']);
    expect(world.obs.metric('MalformedEvents')).toBe(5);
  });

  it('counts the same EventBridge event delivered twice as one offence', async () => {
    const world = new World();
    const event = world.scanEvent('203.0.113.8', { id: 'same-id' });
    await world.decide(event);
    world.clock.advance(5_000);
    await expect(world.decide(event)).resolves.toEqual(['unchanged']);
    const stored = await world.repo.get('203.0.113.8');
    expect(stored?.record.offences).toBe(1);
    expect(stored?.record.hitCount).toBe(3);
    expect(stored?.version).toBe(1);
  });

  it('counts the same event as one offence even when it arrives again after the block expired', async () => {
    const world = new World();
    const event = world.scanEvent('203.0.113.9', { id: 'late-duplicate' });
    await world.decide(event);
    world.clock.advance(2 * 3600_000);
    await world.expiry();
    await expect(world.decide(event)).resolves.toEqual(['unchanged']);
    expect((await world.repo.get('203.0.113.9'))?.record.active).toBe(false);
  });

  it('counts the same event delivered twice at the same time as one offence (conditional writes)', async () => {
    const world = new World();
    const event = world.scanEvent('203.0.113.12', { id: 'racing' });
    const outcomes = (await Promise.all([world.decide(event), world.decide(event)])).flat().sort();
    expect(outcomes).toEqual(['blocked', 'unchanged']);
    const stored = await world.repo.get('203.0.113.12');
    expect(stored?.record).toMatchObject({ offences: 1, hitCount: 3, eventIds: ['racing'] });
    expect(world.ddb.calls.ConditionalCheckFailed).toBeGreaterThanOrEqual(1);
  });

  it('loses no hits when two different events for one attacker race', async () => {
    const world = new World();
    await Promise.all([world.decide(world.scanEvent('203.0.113.13')), world.decide(world.scanEvent('203.0.113.13'))]);
    const stored = await world.repo.get('203.0.113.13');
    expect(stored?.record.hitCount).toBe(6);
    expect(stored?.record.offences).toBe(1);
    expect(stored?.version).toBe(2);
  });

  it('refuses an allowlisted, a protected and a private address with a metric and a log line', async () => {
    const world = new World();
    const outcomes = [
      ...(await world.decide(world.scanEvent('198.51.100.250'))),
      ...(await world.decide(world.scanEvent('10.0.3.4'))),
      ...(await world.decide(world.scanEvent('192.168.1.20'))),
      ...(await world.decide(world.scanEvent('127.0.0.1'))),
    ];
    expect(outcomes).toEqual(['refused', 'refused', 'refused', 'refused']);
    expect(world.obs.metric('Refused')).toBe(4);
    expect(world.obs.logged('refused: never-block rule').map((l) => l.attributes.rule)).toEqual([
      'allowlist 198.51.100.250/32',
      'protected network 10.0.0.0/16',
      expect.stringContaining('private'),
      expect.stringContaining('loopback'),
    ]);
    expect(world.ddb.items.size).toBe(0);
  });

  it('ignores an unverified (no handshake) sighting unless blockUnverified is on', async () => {
    const world = new World();
    await expect(world.decide(world.scanEvent('203.0.113.10', { handshake: false }))).resolves.toEqual(['unchanged']);
    expect(await world.repo.get('203.0.113.10')).toBeUndefined();
  });

  it('escalates a repeat offence after the first block expired', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.11'));
    world.clock.advance(3600_000 + 60_000);
    await world.expiry();
    await world.decide(world.scanEvent('203.0.113.11'));
    const record = (await world.repo.get('203.0.113.11'))?.record;
    expect(record?.offences).toBe(2);
    expect(record && record.expiresAt - record.blockedAt).toBe(2 * 3600_000);
  });

  it('opens the burst circuit breaker past the per-minute limit: no new block, an alarm metric, and the event fails so that it is retried', async () => {
    const world = new World();
    const limited = { ...world.settings, policy: { ...world.settings.policy, burstLimitPerMinute: 3 } };
    Object.assign(world.settings, limited);
    const outcomes: string[] = [];
    for (let i = 1; i <= 3; i++) outcomes.push(...(await world.decide(world.scanEvent(`203.0.113.${20 + i}`))));
    expect(outcomes).toEqual(['blocked', 'blocked', 'blocked']);
    const refused = world.scanEvent('203.0.113.24');
    await expect(world.decide(refused)).rejects.toMatchObject({ name: 'CircuitBreakerOpen', targets: ['203.0.113.24'], outcomes: ['breaker-open'] });
    await expect(world.decide(world.scanEvent('203.0.113.25'))).rejects.toThrow(/circuit breaker open/);
    expect(world.obs.metric('CircuitBreakerOpen')).toBe(2);
    expect(await world.repo.get('203.0.113.24')).toBeUndefined();
    // Lambda retries the same event a minute later: the breaker has closed, the block is added
    world.clock.advance(60_000);
    await expect(world.decide(refused)).resolves.toEqual(['blocked']);
  });

  it('a refused sighting does not hold back the other sightings of its event, nor their wake-up', async () => {
    const world = new World();
    Object.assign(world.settings, { ...world.settings, policy: { ...world.settings.policy, burstLimitPerMinute: 1 } });
    const finding = {
      version: '0', id: 'gd-two', 'detail-type': 'GuardDuty Finding', source: 'aws.guardduty', account: '123456789012',
      time: new Date(world.clock.now()).toISOString(), region: 'eu-west-1', resources: [],
      detail: {
        schemaVersion: '2.0', id: 'f2', type: 'Recon:EC2/PortProbeUnprotectedPort', severity: 2,
        service: {
          serviceName: 'guardduty', count: 2,
          action: {
            actionType: 'PORT_PROBE',
            portProbeAction: {
              blocked: false,
              portProbeDetails: [
                { localPortDetails: { port: 22, portName: 'SSH' }, remoteIpDetails: { ipAddressV4: '203.0.113.50' } },
                { localPortDetails: { port: 22, portName: 'SSH' }, remoteIpDetails: { ipAddressV4: '203.0.113.51' } },
              ],
            },
          },
        },
      },
    };
    await expect(world.decide(finding)).rejects.toMatchObject({ outcomes: ['blocked', 'breaker-open'] });
    expect((await world.repo.get('203.0.113.50'))?.record.active).toBe(true);
    expect(world.sqs.depth).toBe(1);
    world.clock.advance(60_000);
    await expect(world.decide(finding)).resolves.toEqual(['unchanged', 'blocked']);
  });

  it('counts a new attacker once in the burst breaker when the same event is retried within the minute', async () => {
    const world = new World();
    Object.assign(world.settings, { ...world.settings, policy: { ...world.settings.policy, burstLimitPerMinute: 2 } });
    const event = world.scanEvent('203.0.113.60');
    await world.decide(event);
    await world.decide(event);
    await world.decide(world.scanEvent('203.0.113.60'));
    await expect(world.decide(world.scanEvent('203.0.113.61'))).resolves.toEqual(['blocked']);
  });

  it('an invocation that dies between claiming a burst slot and its verdict holds that attacker only for the minute: the others fail (retried), the next minute blocks', async () => {
    const world = new World();
    const original = world.ddb.client.send.bind(world.ddb.client);
    let dies = true;
    world.ddb.client.send = (async (command: { constructor: { name: string }; input: { UpdateExpression?: string } }, ...rest: unknown[]) => {
      if (dies && command.constructor.name === 'UpdateCommand' && command.input.UpdateExpression?.includes('#verdict')) {
        dies = false;
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
      }
      return (original as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as typeof world.ddb.client.send;
    const event = world.scanEvent('203.0.113.70');
    await expect(world.decide(event)).rejects.toMatchObject({ name: 'TimeoutError' });
    await expect(world.decide(world.scanEvent('203.0.113.70'))).rejects.toThrow(/still pending/);
    expect(await world.repo.get('203.0.113.70')).toBeUndefined();
    world.clock.advance(60_000);
    await expect(world.decide(event)).resolves.toEqual(['blocked']);
  });

  it('marks a Scan Detected from the flow logs converter with reason flowlogs', async () => {
    const world = new World();
    await world.decide(world.scanEvent('203.0.113.30', { sensorId: 'flowlogs/eni-0abc' }));
    expect((await world.repo.get('203.0.113.30'))?.record.reason).toBe('flowlogs');
  });

  it('takes a Block Requested for a CIDR with its TTL, and an Unblock Requested lifts it', async () => {
    const world = new World();
    const base = { version: '0', account: '123456789012', region: 'eu-west-1', resources: [], source: 'portsnare.cli', time: new Date(world.clock.now()).toISOString() };
    await world.decide({ ...base, id: 'b1', 'detail-type': 'Block Requested', detail: { version: 1, target: '203.0.113.64/26', ttlSeconds: 7200, reason: 'abuse report', requestedBy: 'alice' } });
    const blocked = (await world.repo.get('203.0.113.64/26'))?.record;
    expect(blocked).toMatchObject({ reason: 'manual', active: true, note: 'abuse report' });
    expect(blocked && blocked.expiresAt - blocked.blockedAt).toBe(7200_000);
    await world.decide({ ...base, id: 'u1', 'detail-type': 'Unblock Requested', detail: { version: 1, target: '203.0.113.64/26', requestedBy: 'bob' } });
    const lifted = world.ddb.item('BLOCK#203.0.113.64/26', 'STATE');
    expect(lifted).toMatchObject({ active: false, liftedBy: 'unblock by bob' });
    expect(lifted?.activeKey).toBeUndefined();
    expect(typeof lifted?.ttl).toBe('number');
  });

  it('refuses a Block Requested wider than the widest prefix (32.0.0.0/3 is an eighth of IPv4) or longer than the manual maximum', async () => {
    const world = new World();
    const base = { version: '0', account: '123456789012', region: 'eu-west-1', resources: [], source: 'portsnare.cli', time: new Date(world.clock.now()).toISOString() };
    await world.decide({ ...base, id: 'w1', 'detail-type': 'Block Requested', detail: { version: 1, target: '32.0.0.0/3', requestedBy: 'mallory' } });
    await world.decide({ ...base, id: 'w2', 'detail-type': 'Block Requested', detail: { version: 1, target: '203.0.113.9', ttlSeconds: 365 * 86400, requestedBy: 'mallory' } });
    expect(await world.repo.get('32.0.0.0/3')).toBeUndefined();
    expect(await world.repo.get('203.0.113.9')).toBeUndefined();
  });

  it('blocks every remote address of a GuardDuty port probe finding; a Portscan finding blocks nobody (its remote address is our victim)', async () => {
    const world = new World();
    const finding = (type: string, action: Record<string, unknown>) => ({
      version: '0',
      id: `gd-${type}`,
      'detail-type': 'GuardDuty Finding',
      source: 'aws.guardduty',
      account: '123456789012',
      time: new Date(world.clock.now()).toISOString(),
      region: 'eu-west-1',
      resources: [],
      detail: { schemaVersion: '2.0', id: 'f1', type, severity: 2, service: { serviceName: 'guardduty', count: 4, action } },
    });
    await world.decide(
      finding('Recon:EC2/PortProbeUnprotectedPort', {
        actionType: 'PORT_PROBE',
        portProbeAction: {
          blocked: false,
          portProbeDetails: [
            { localPortDetails: { port: 22, portName: 'SSH' }, remoteIpDetails: { ipAddressV4: '203.0.113.40' } },
            { localPortDetails: { port: 3389, portName: 'RDP' }, remoteIpDetails: { ipAddressV4: '203.0.113.41' } },
          ],
        },
      }),
    );
    await world.decide(
      finding('Recon:EC2/Portscan', { actionType: 'NETWORK_CONNECTION', networkConnectionAction: { remoteIpDetails: { ipAddressV4: '203.0.113.42' } } }),
    );
    for (const target of ['203.0.113.40', '203.0.113.41']) {
      expect((await world.repo.get(target))?.record).toMatchObject({ reason: 'guardduty', active: true, hitCount: 4 });
    }
    expect(await world.repo.get('203.0.113.42')).toBeUndefined();
  });
});
