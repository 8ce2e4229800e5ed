/**
 * `portsnare export` / `import`: the active blocks of one store into another as JSON and as CSV
 * (stores of this test's own, no agent, no nftables); a refused target is reported, the rest land.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runCli } from './cli';

let dir: string;
let config: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'portsnare-decisions-'));
  config = join(dir, 'agent.yaml');
  writeFileSync(config, ['enforce: { nftables: { enabled: false } }', 'guard: { blockableSpecialCidrs: ["198.51.100.0/24", "2001:db8::/32"] }', 'sinks: []', ''].join('\n'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const store = (name: string): string[] => ['--config', config, '--state-dir', join(dir, name)];

for (const format of ['json', 'csv'] as const) {
  it(`exports the active blocks as ${format} and imports them into another store, expiry and note kept`, async () => {
    expect((await runCli(['block', '198.51.100.7', '--ttl', '2h', '--reason', 'known bad, "really"', ...store('a')])).code).toBe(0);
    expect((await runCli(['block', '2001:db8::/48', '--ttl', '1d', ...store('a')])).code).toBe(0);
    const exported = await runCli(['export', '--format', format, ...store('a')]);
    expect(exported.code, exported.stderr).toBe(0);
    const file = join(dir, `decisions.${format}`);
    writeFileSync(file, exported.stdout);

    const imported = await runCli(['import', file, ...store('b')]);
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/^imported 2 of 2/);
    const a = JSON.parse((await runCli(['blocks', '--json', ...store('a')])).stdout) as Array<{ target: string; expiresAt: string; note?: string }>;
    const b = JSON.parse((await runCli(['blocks', '--json', ...store('b')])).stdout) as Array<{ target: string; expiresAt: string; note?: string }>;
    expect(b.map((x) => x.target)).toEqual(a.map((x) => x.target));
    for (const [i, block] of b.entries()) expect(Math.abs(Date.parse(block.expiresAt) - Date.parse(a[i]!.expiresAt))).toBeLessThan(5000);
    expect(b.find((x) => x.target === '198.51.100.7')?.note).toContain('known bad, "really"');
  });
}

it('a refused target is reported and skipped (exit 3); the others land', async () => {
  const file = join(dir, 'in.csv');
  writeFileSync(file, 'target,expiresAt,note\n127.0.0.1,,loopback\n198.51.100.8,,"a, b"\n');
  const result = await runCli(['import', file, ...store('c')]);
  expect(result.code).toBe(3);
  expect(result.stdout).toMatch(/^imported 1 of 2/);
  expect(result.stdout).toMatch(/^refused {2}2 127\.0\.0\.1: /m);
  expect(JSON.parse((await runCli(['blocks', '--json', ...store('c')])).stdout)).toMatchObject([{ target: '198.51.100.8' }]);
});
