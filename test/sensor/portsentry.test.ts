import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseAgentConfig } from '../../sensor/config';
import { ignoreEntry, importPortsentry } from '../../sensor/portsentry';

// Shaped after Portsentry 2.0's examples/portsentry.conf
const V2 = `
# PortSentry 2.0 Configuration
TCP_PORTS="1,7,9,11,13,15,17,19,20,21,70,79,111,113,119,389,512-515,540,543-544,873,989,990,992,1080"
UDP_PORTS="7,9,13,19,111,389,513,517-518"
#TCP_PORTS="1-1813"
IGNORE_FILE="/etc/portsentry/portsentry.ignore"
HISTORY_FILE="/var/run/portsentry/portsentry.history"
BLOCKED_FILE="/var/run/portsentry/portsentry.blocked"
#RESOLVE_HOST = "0"
BLOCK_TCP="1"
BLOCK_UDP="0"
KILL_ROUTE="/sbin/iptables -I INPUT -s $TARGET$ -j DROP"
#KILL_HOSTS_DENY="ALL: $TARGET$ : DENY"
SCAN_TRIGGER="2"
PORT_BANNER="*** UNAUTHORIZED ACCESS PROHIBITED *** YOUR CONNECTION ATTEMPT HAS BEEN LOGGED."
`;

// Shaped after Portsentry 1.2's portsentry.conf (advanced mode keys)
const V12 = `
TCP_PORTS="1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771,32772,32773,32774,40421,49724,54320"
UDP_PORTS="1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321"
ADVANCED_PORTS_TCP="1024"
ADVANCED_PORTS_UDP="1024"
ADVANCED_EXCLUDE_TCP="113,139"
ADVANCED_EXCLUDE_UDP="520,138,137,67"
IGNORE_FILE="/usr/local/psionic/portsentry/portsentry.ignore"
RESOLVE_HOST = "0"
BLOCK_UDP="1"
BLOCK_TCP="1"
KILL_HOSTS_DENY="ALL: $TARGET$"
KILL_RUN_CMD="/some/path/here/script $TARGET$ $PORT$"
SCAN_TRIGGER="0"
`;

const IGNORE = `# Put hosts in here you never want blocked.
127.0.0.1/32
0.0.0.0
198.51.100.0/255.255.255.0
2001:db8::/32
not-a-host
`;

describe('import-portsentry', () => {
  it('maps a Portsentry 2.x file and warns about the keys with no equivalent', () => {
    const result = importPortsentry(V2, { readFile: () => IGNORE });

    expect(result.valid).toBe(true);
    expect(result.config).toEqual({
      tcpPorts: '1,7,9,11,13,15,17,19,20,21,70,79,111,113,119,389,512-515,540,543-544,873,989,990,992,1080',
      udpPorts: '7,9,13,19,111,389,513,517-518',
      ignore: ['127.0.0.1', '0.0.0.0', '198.51.100.0/24', '2001:db8::/32'],
      trigger: { hits: 3, windowSeconds: 60 },
      banner: '*** UNAUTHORIZED ACCESS PROHIBITED *** YOUR CONNECTION ATTEMPT HAS BEEN LOGGED.',
      enforce: { nftables: { enabled: true } },
    });
    expect(result.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^KILL_ROUTE has no equivalent/),
        expect.stringMatching(/^HISTORY_FILE has no equivalent/),
        expect.stringMatching(/^BLOCKED_FILE has no equivalent/),
        expect.stringMatching(/line 6: "not-a-host" is not an address or CIDR/),
      ]),
    );
    // the printed YAML is the same config
    expect(parse(result.yaml)).toEqual(result.config);
  });

  it('maps a Portsentry 1.2 file; advanced mode only on request', () => {
    const classic = importPortsentry(V12, { readFile: () => '' });
    expect(classic.config.tcpPorts).toMatch(/^1,11,15,79/);
    expect(classic.config.stealth).toBeUndefined();
    expect(classic.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^ADVANCED_PORTS_TCP="1024" \(advanced mode\) not imported: re-run with --advanced/)]));
    expect(classic.config.enforce).toEqual({ nftables: { enabled: true, policy: { blockUnverified: true } } });
    expect(classic.config.trigger).toEqual({ hits: 1, windowSeconds: 60 });
    expect(classic.warnings).toEqual(
      expect.arrayContaining([expect.stringMatching(/^KILL_HOSTS_DENY has no equivalent/), expect.stringMatching(/^KILL_RUN_CMD has no equivalent/), expect.stringMatching(/^RESOLVE_HOST has no equivalent/)]),
    );

    const advanced = importPortsentry(V12, { advanced: true, readFile: () => '' });
    expect(advanced.valid).toBe(true);
    expect(advanced.config).toMatchObject({ tcpPorts: 'all-unused', udpPorts: 'all-unused', stealth: true, excludePorts: { tcp: '113,139', udp: '520,138,137,67' } });
  });

  it('warns when the IGNORE_FILE cannot be read, and still prints a config', () => {
    const result = importPortsentry(V2, {
      readFile: () => {
        throw new Error('EACCES: permission denied');
      },
    });
    expect(result.config.ignore).toBeUndefined();
    expect(result.warnings).toEqual(expect.arrayContaining([expect.stringMatching(/^IGNORE_FILE \/etc\/portsentry\/portsentry.ignore: cannot read it \(EACCES/)]));
    expect(result.valid).toBe(true);
  });

  it('reads ignore entries as addresses, CIDRs and address/netmask', () => {
    expect(ignoreEntry('192.0.2.7')).toBe('192.0.2.7');
    expect(ignoreEntry('192.0.2.7/32')).toBe('192.0.2.7');
    expect(ignoreEntry('192.0.2.0/255.255.255.0')).toBe('192.0.2.0/24');
    expect(ignoreEntry('192.0.2.0/255.0.255.0')).toBeUndefined();
    expect(ignoreEntry('2001:db8::1')).toBe('2001:db8::1');
  });

  it('turns any file into a config or warnings, never a crash, and a valid import parses as an agent config', () => {
    const key = fc.constantFrom('TCP_PORTS', 'UDP_PORTS', 'ADVANCED_PORTS_TCP', 'ADVANCED_EXCLUDE_UDP', 'IGNORE_FILE', 'SCAN_TRIGGER', 'PORT_BANNER', 'BLOCK_TCP', 'BLOCK_UDP', 'KILL_ROUTE', 'WHATEVER');
    const value = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('1,2,3', '1-1024', '70000', '0', '1', '2', '5-1', ''));
    const line = fc.oneof(
      fc.tuple(key, value, fc.boolean()).map(([k, v, quoted]) => (quoted ? `${k}="${v.replace(/"/g, '')}"` : `${k} = ${v}`)),
      fc.string({ maxLength: 60 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), fc.string({ maxLength: 80 }), (lines, advanced, ignore) => {
        const result = importPortsentry(lines.join('\n'), { advanced, readFile: () => ignore });
        expect(typeof result.yaml).toBe('string');
        if (result.valid) expect(parseAgentConfig(parse(result.yaml)).ok).toBe(true);
        else expect(result.warnings.join('\n')).toContain('does not validate yet');
      }),
      { numRuns: 300 },
    );
  });
});
