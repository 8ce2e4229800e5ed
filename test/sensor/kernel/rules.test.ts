import { describe, expect, it } from 'vitest';
import { parseProcNet } from '../../../sensor/kernel/listening';
import { cidrElements, detectorScript, portElements, removalScript } from '../../../sensor/kernel/rules';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1076 1 0 100 0 0 10 0
   1: 0100007F:24FE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 35021 1 0 100 0 0 10 0
   2: 016433C6:0050 426433C6:C350 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0
`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  10: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0 0
  11: 00000000000000000000000001000000:D431 00000000000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 778 2 0 0
`;

describe('parseProcNet', () => {
  it('lists the ports of listening TCP sockets only (not established ones)', () => {
    expect(parseProcNet(TCP, 'tcp')).toEqual([22, 9470]);
  });

  it('skips the sockets of this process by inode', () => {
    expect(parseProcNet(TCP, 'tcp', new Set(['35021']))).toEqual([22]);
  });

  it('lists bound unconnected UDP sockets, not connected client sockets', () => {
    expect(parseProcNet(UDP6, 'udp')).toEqual([53]);
  });
});

describe('portElements', () => {
  it('merges neighbours into ranges and drops duplicates and junk', () => {
    expect(portElements([80, 22, 23, 24, 24, 0, 70000, 443, 444])).toEqual(['22-24', '80', '443-444']);
    expect(portElements([])).toEqual([]);
  });
});

describe('cidrElements', () => {
  it('splits by family, folds mapped IPv6 and clears host bits', () => {
    expect(cidrElements(['198.51.100.7', '::ffff:203.0.113.5', '2001:db8::1/128', '10.1.2.3/8', '2001:db8:1::/48'])).toEqual({
      v4: ['198.51.100.7', '203.0.113.5', '10.0.0.0/8'],
      v6: ['2001:db8::1', '2001:db8:1::/48'],
    });
  });

  it('throws on junk, naming it', () => {
    expect(() => cidrElements(['example.com'])).toThrow('not an IP address or CIDR: "example.com"');
  });
});

describe('detectorScript', () => {
  const base = { exempt: ['198.51.100.1', '2001:db8:1::1'], keepPorts: { tcp: [22, 80], udp: [53] }, nflogGroup: 7 };

  it('watches listed decoy ports and only logs without a kill TTL', () => {
    const script = detectorScript({ ...base, tcpPorts: [1, 7, 9, 11, 12, 13], udpPorts: [] });
    expect(script).toContain('add element inet portsnare tcpdecoy { 1, 7, 9, 11-13 }');
    expect(script).toContain('add rule inet portsnare detect tcp dport @tcpdecoy counter jump probe');
    expect(script).not.toContain('udp dport');
    expect(script).toContain('log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:seen"');
    expect(script).not.toContain('@blocked4');
  });

  it('in all-unused mode watches every port but the kept ones', () => {
    const script = detectorScript({ ...base, tcpPorts: 'all-unused', udpPorts: 'all-unused' });
    expect(script).toContain('add element inet portsnare tcpkeep { 22, 80 }');
    expect(script).toContain('detect tcp dport != @tcpkeep counter jump probe');
    expect(script).toContain('detect udp dport != @udpkeep counter jump probe');
  });

  it('exempts sources first and skips replies, broadcast and RST before any probe rule', () => {
    const lines = detectorScript({ ...base, tcpPorts: 'all-unused', udpPorts: [] }).split('\n').filter((l) => l.startsWith('add rule inet portsnare detect'));
    expect(lines.map((l) => l.replace('add rule inet portsnare detect ', ''))).toEqual([
      'ip saddr @exempt4 return',
      'ip6 saddr @exempt6 return',
      'fib daddr type != local return',
      'tcp flags & rst == rst return',
      'ct state established,related return',
      'tcp dport != @tcpkeep counter jump probe',
    ]);
  });

  it('proves nothing in the kernel: no rule reports or blocks on conntrack\'s established state (a duplicated SYN is "established")', () => {
    for (const tcpPorts of [[23], 'all-unused'] as const) {
      const script = detectorScript({ ...base, tcpPorts, udpPorts: [], redirectPort: 40999, quarantineSeconds: 10 });
      expect(script).not.toMatch(/handshake|portsnare:conn|portsnare:proof|@conn4|@conn6/);
      for (const line of script.split('\n').filter((l) => l.includes('ct state established'))) {
        // only ever a way out (return), never a log, a jump or a set update
        expect(line).toMatch(/ct state established(,related)?( ct direction original)? return$/);
      }
    }
  });

  it('with a kill TTL adds the source to the blocked set in the same rule, after the never-block checks', () => {
    const script = detectorScript({
      ...base,
      tcpPorts: [23],
      udpPorts: [],
      killTtlSeconds: 600,
      killGuard: { neverBlock: ['203.0.113.0/24'], blockSpecialRanges: false, blockableSpecialCidrs: ['198.51.100.0/24'] },
    });
    const probe = script.split('\n').filter((l) => l.startsWith('add rule inet portsnare probe'));
    const kill = probe.findIndex((l) => l.includes('add @blocked4 { ip saddr timeout 600s } counter drop'));
    const keep = probe.findIndex((l) => l.includes('ip saddr @keep4'));
    const special = probe.findIndex((l) => l.includes('ip saddr @special4 ip saddr != @specialok4'));
    expect(keep).toBeGreaterThanOrEqual(0);
    expect(special).toBeGreaterThan(keep);
    expect(kill).toBeGreaterThan(special);
    expect(script).toContain('add element inet portsnare keep4 { 203.0.113.0/24 }');
    expect(script).toContain('add element inet portsnare specialok4 { 198.51.100.0/24 }');
    expect(script).toMatch(/add element inet portsnare special4 \{[^}]*10\.0\.0\.0\/8/);
    expect(script).toContain('add @blocked6 { ip6 saddr timeout 600s }');
  });

  it('with blockSpecialRanges leaves the special sets empty', () => {
    const script = detectorScript({ ...base, tcpPorts: [23], udpPorts: [], killTtlSeconds: 60, killGuard: { neverBlock: [], blockSpecialRanges: true, blockableSpecialCidrs: [] } });
    expect(script).not.toMatch(/add element inet portsnare special4/);
  });

  it('refuses a bad nflog group or kill TTL', () => {
    expect(() => detectorScript({ ...base, tcpPorts: [23], udpPorts: [], nflogGroup: 70000 })).toThrow(/nflog group/);
    expect(() => detectorScript({ ...base, tcpPorts: [23], udpPorts: [], killTtlSeconds: 0.5 })).toThrow(/killTtlSeconds/);
  });
});

describe('detectorScript: quarantine (on by default)', () => {
  const base = { exempt: ['198.51.100.1'], keepPorts: { tcp: [22], udp: [] }, nflogGroup: 7, tcpPorts: 'all-unused' as const, udpPorts: [] };
  const chain = (script: string, name: string): string[] =>
    script
      .split('\n')
      .filter((l) => l.startsWith(`add rule inet portsnare ${name} `))
      .map((l) => l.slice(`add rule inet portsnare ${name} `.length));

  it('holds a source 10 s on its first forgeable decoy packet, once an hour, 100 a minute, and logs it as a quarantine', () => {
    const probe = chain(detectorScript(base), 'probe');
    expect(probe).toContain(
      'meta nfproto ipv4 limit name "quarbudget4" log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:quar" add @quar4 { ip saddr timeout 10s } add @quarseen4 { ip saddr timeout 3600s } counter drop comment "portsnare: quarantine on a decoy packet"',
    );
    expect(probe).toContain(
      'meta nfproto ipv6 limit name "quarbudget6" log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:quar" add @quar6 { ip6 saddr timeout 10s } add @quarseen6 { ip6 saddr timeout 3600s } counter drop comment "portsnare: quarantine on a decoy packet"',
    );
    // one budget per address family, shared by every quarantine rule of that family
    expect(detectorScript(base)).toContain('add limit inet portsnare quarbudget4 { rate 100/minute burst 100 packets }');
    expect(detectorScript(base)).toContain('add limit inet portsnare quarbudget6 { rate 100/minute burst 100 packets }');
    expect(probe.filter((l) => l.includes('prefix "portsnare:quar"')).every((l) => /limit name "quarbudget[46]"/.test(l))).toBe(true);
    const at = (text: string): number => probe.findIndex((l) => l.includes(text));
    // order: per-source cap, never-block checks, once-per-period check, quarantine, plain log
    expect(at('update @rate4')).toBe(0);
    expect(at('ip saddr @keep4')).toBeGreaterThan(at('update @rate6'));
    expect(at('ip saddr @special4')).toBeGreaterThan(at('ip saddr @keep4'));
    expect(at('ip saddr @quarseen4 log')).toBeGreaterThan(at('ip6 saddr @special6'));
    expect(at('add @quar4')).toBeGreaterThan(at('ip6 saddr @quarseen6 log'));
    expect(probe.at(-1)).toBe('log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:seen"');
    expect(probe.join('\n')).not.toContain('@blocked');
  });

  it('drops everything else a quarantined source sends, refusing its connection attempts, exempt sources first', () => {
    const script = detectorScript(base);
    expect(script).toContain('add set inet portsnare quar4 { type ipv4_addr; flags dynamic,timeout; size 65535; }');
    expect(chain(script, 'quarantine')).toEqual([
      'ip saddr @exempt4 return',
      'ip6 saddr @exempt6 return',
      'ip saddr @quar4 ct state established ct direction original return',
      'ip6 saddr @quar6 ct state established ct direction original return',
      'ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn counter reject with tcp reset comment "portsnare: quarantined address"',
      'ip6 saddr @quar6 tcp flags & (fin|syn|rst|ack) == syn counter reject with tcp reset comment "portsnare: quarantined address"',
      'ip saddr @quar4 counter drop comment "portsnare: quarantined address"',
      'ip6 saddr @quar6 counter drop comment "portsnare: quarantined address"',
    ]);
    expect(chain(detectorScript({ ...base, quarantineAnswer: 'drop' }), 'quarantine').join('\n')).not.toContain('reject');
  });

  it('takes every number as an option', () => {
    const script = detectorScript({ ...base, quarantineSeconds: 3, quarantinePeriodSeconds: 600, quarantinePerMinute: 20 });
    expect(script).toContain('add limit inet portsnare quarbudget4 { rate 20/minute burst 20 packets }');
    expect(chain(script, 'probe').find((l) => l.includes('add @quar4'))).toContain('limit name "quarbudget4" log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:quar" add @quar4 { ip saddr timeout 3s } add @quarseen4 { ip saddr timeout 600s }');
  });

  it('quarantineSeconds 0 turns it off: the probe chain only logs', () => {
    const probe = chain(detectorScript({ ...base, quarantineSeconds: 0 }), 'probe');
    expect(probe.join('\n')).not.toMatch(/@quar|@keep4|portsnare:quar/);
    expect(probe.at(-1)).toContain('prefix "portsnare:seen"');
  });

  it('the in-kernel block goes through its own per-minute budget, then falls back to quarantine', () => {
    const probe = chain(detectorScript({ ...base, killTtlSeconds: 600, killPerMinute: 30 }), 'probe');
    const kill4 = probe.findIndex((l) => l.includes('add @blocked4'));
    expect(probe[kill4]).toBe(
      'meta nfproto ipv4 limit rate 30/minute burst 30 packets log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:kill" add @blocked4 { ip saddr timeout 600s } counter drop comment "portsnare: kernel block on a decoy packet"',
    );
    expect(probe.findIndex((l) => l.includes('add @blocked6'))).toBe(kill4 + 1);
    expect(probe.findIndex((l) => l.includes('add @quar4'))).toBeGreaterThan(kill4);
    expect(detectorScript({ ...base, killTtlSeconds: 600 })).toContain('limit rate 100/minute burst 100 packets log group 7 snaplen 128 queue-threshold 1 prefix "portsnare:kill"');
  });

  it('refuses bad numbers, naming the key and value', () => {
    expect(() => detectorScript({ ...base, quarantineSeconds: -1 })).toThrow('quarantineSeconds must be a whole number 0..86400, got -1');
    expect(() => detectorScript({ ...base, quarantinePerMinute: 0 })).toThrow('quarantinePerMinute must be a whole number 1..1000000, got 0');
    expect(() => detectorScript({ ...base, killPerMinute: 1.5 })).toThrow('killPerMinute must be a whole number 1..1000000, got 1.5');
    expect(() => detectorScript({ ...base, quarantinePeriodSeconds: 5 })).toThrow('quarantinePeriodSeconds (5) must be at least quarantineSeconds (10)');
    expect(() => detectorScript({ ...base, redirectPort: 70000 })).toThrow('redirectPort must be a whole number 1..65535, got 70000');
    expect(() => detectorScript({ ...base, quarantineAnswer: 'rst' as never })).toThrow('quarantineAnswer must be "reset" or "drop", got "rst"');
  });
});

describe('detectorScript: redirect of unused ports, and what a held source may still reach', () => {
  const base = { exempt: ['198.51.100.1'], keepPorts: { tcp: [22], udp: [] }, nflogGroup: 7, tcpPorts: 'all-unused' as const, udpPorts: [] };
  const chain = (script: string, name: string): string[] =>
    script
      .split('\n')
      .filter((l) => l.startsWith(`add rule inet portsnare ${name} `))
      .map((l) => l.slice(`add rule inet portsnare ${name} `.length));

  it('redirects new TCP connections to unused ports to one local port, never an exempt source', () => {
    const script = detectorScript({ ...base, tcpPorts: 'all-unused', redirectPort: 40999 });
    expect(script).toContain('add chain inet portsnare divert { type nat hook prerouting priority -100; policy accept; }');
    const divert = script.split('\n').filter((l) => l.startsWith('add rule inet portsnare divert '));
    expect(divert).toEqual([
      'add rule inet portsnare divert ip saddr @exempt4 return',
      'add rule inet portsnare divert ip6 saddr @exempt6 return',
      `add rule inet portsnare divert ct state new fib daddr type local tcp dport != @tcpkeep counter redirect to :40999 comment "portsnare: unused port to the agent's socket"`,
    ]);
  });

  it('in list mode redirects only sources seen probing a decoy this period (quarseen), and watches the listening ports', () => {
    const script = detectorScript({ ...base, tcpPorts: [23, 135], redirectPort: 40999 });
    expect(chain(script, 'divert')).toEqual([
      'ip saddr @exempt4 return',
      'ip6 saddr @exempt6 return',
      `ip saddr @quarseen4 ct state new fib daddr type local tcp dport != @tcpkeep counter redirect to :40999 comment "portsnare: a decoy prober's unused port to the agent's socket"`,
      `ip6 saddr @quarseen6 ct state new fib daddr type local tcp dport != @tcpkeep counter redirect to :40999 comment "portsnare: a decoy prober's unused port to the agent's socket"`,
    ]);
    expect(script).toContain('add element inet portsnare tcpkeep { 22 }');
    // without quarantine there is no quarseen, so no redirect in list mode
    expect(detectorScript({ ...base, tcpPorts: [23], redirectPort: 40999, quarantineSeconds: 0 })).not.toMatch(/divert|redirect/);
  });

  it('lets a held source\'s SYN reach a socket of ours (a decoy, the redirect) and its own connections, and nothing else', () => {
    const list = chain(detectorScript({ ...base, tcpPorts: [23], redirectPort: 40999 }), 'quarantine');
    expect(list).toEqual([
      'ip saddr @exempt4 return',
      'ip6 saddr @exempt6 return',
      'ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn tcp dport @tcpdecoy return',
      'ip6 saddr @quar6 tcp flags & (fin|syn|rst|ack) == syn tcp dport @tcpdecoy return',
      'ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn fib daddr type local tcp dport != @tcpkeep return',
      'ip6 saddr @quar6 tcp flags & (fin|syn|rst|ack) == syn fib daddr type local tcp dport != @tcpkeep return',
      'ip saddr @quar4 ct state established ct direction original return',
      'ip6 saddr @quar6 ct state established ct direction original return',
      'ip saddr @quar4 tcp flags & (fin|syn|rst|ack) == syn counter reject with tcp reset comment "portsnare: quarantined address"',
      'ip6 saddr @quar6 tcp flags & (fin|syn|rst|ack) == syn counter reject with tcp reset comment "portsnare: quarantined address"',
      'ip saddr @quar4 counter drop comment "portsnare: quarantined address"',
      'ip6 saddr @quar6 counter drop comment "portsnare: quarantined address"',
    ]);
    // after conntrack (-200), so `ct state` is known; before detect (-150) and NAT (-100)
    expect(detectorScript({ ...base })).toContain('add chain inet portsnare quarantine { type filter hook prerouting priority -190; policy accept; }');
    // all-unused without a redirect: no socket answers an unused port, so nothing passes but its own connections
    const bare = chain(detectorScript({ ...base, tcpPorts: 'all-unused' }), 'quarantine');
    expect(bare.filter((l) => l.endsWith('return') && l.includes('@quar'))).toEqual(['ip saddr @quar4 ct state established ct direction original return', 'ip6 saddr @quar6 ct state established ct direction original return']);
  });

  it('lets the first SYN to a socket of ours through (held all the same), and drops every other first packet', () => {
    const probe = chain(detectorScript({ ...base, tcpPorts: 'all-unused', redirectPort: 40999 }), 'probe');
    const through = probe.findIndex((l) => l.startsWith('tcp flags & (fin|syn|rst|ack) == syn meta l4proto tcp meta nfproto ipv4') && l.includes('add @quar4') && l.endsWith('accept comment "portsnare: quarantine on a SYN to a decoy socket"'));
    const dropped = probe.findIndex((l) => l.startsWith('meta nfproto ipv4') && l.includes('add @quar4') && l.includes('counter drop'));
    expect(through).toBeGreaterThan(probe.findIndex((l) => l.startsWith('ip saddr @quarseen4')));
    expect(dropped).toBe(through + 2);
    expect(chain(detectorScript({ ...base, tcpPorts: [23] }), 'probe').some((l) => l.startsWith('tcp flags & (fin|syn|rst|ack) == syn tcp dport @tcpdecoy meta nfproto ipv6'))).toBe(true);
    // no socket answers: nothing is let through
    expect(chain(detectorScript({ ...base, tcpPorts: 'all-unused' }), 'probe').some((l) => l.includes(' accept comment'))).toBe(false);
  });

  it('has no nat chain without redirectPort', () => {
    expect(detectorScript({ ...base, tcpPorts: 'all-unused' })).not.toMatch(/divert|redirect/);
    expect(detectorScript({ ...base, tcpPorts: [23] })).not.toMatch(/divert|redirect/);
  });
});

describe('removalScript', () => {
  it('deletes the quarantine and redirect chains and the quarantine sets too', () => {
    const script = removalScript({ chains: new Set(['quarantine', 'divert']), sets: new Set(['quar4', 'quarseen6', 'blocked6']), limits: new Set(['quarbudget4', 'other']) });
    expect(script.trim().split('\n')).toEqual([
      'flush chain inet portsnare quarantine',
      'flush chain inet portsnare divert',
      'delete chain inet portsnare quarantine',
      'delete chain inet portsnare divert',
      'delete set inet portsnare quar4',
      'delete set inet portsnare quarseen6',
      'delete limit inet portsnare quarbudget4',
    ]);
  });

  it('deletes only the detector objects that exist, chains before sets, never the blocked sets', () => {
    const script = removalScript({ chains: new Set(['block', 'detect', 'probe', 'handshake']), sets: new Set(['blocked4', 'exempt4', 'rate6']) });
    expect(script.trim().split('\n')).toEqual([
      'flush chain inet portsnare detect',
      'flush chain inet portsnare probe',
      'flush chain inet portsnare handshake',
      'delete chain inet portsnare detect',
      'delete chain inet portsnare probe',
      'delete chain inet portsnare handshake',
      'delete set inet portsnare exempt4',
      'delete set inet portsnare rate6',
    ]);
  });
});
