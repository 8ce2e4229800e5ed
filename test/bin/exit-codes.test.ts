/**
 * README.md's exit-code table is the contract: every example in its third column is run as it
 * stands (CONFIG, BAD and UNWRITABLE replaced by files made here) and must exit with the code of
 * its row. The oracle is the README, not bin/commands/errors.ts.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, runCli } from './cli';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('**Exit codes**'), readme.indexOf('## Run the agent on a host'));
const rows = [...section.matchAll(/^\| (\d) \| .* \| (.*) \|$/gm)].map((match) => ({
  code: Number(match[1]),
  examples: [...(match[2] ?? '').matchAll(/`portsnare ([^`]+)`/g)].map((m) => m[1] ?? ''),
}));
const cases = rows.flatMap((row) => row.examples.map((example) => ({ code: row.code, example })));

let dir: string;
const files: Record<string, string> = {};

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portsnare-exit-'));
  const port = await unusedPort();
  files['CONFIG'] = join(dir, 'agent.yaml');
  files['BAD'] = join(dir, 'bad.yaml');
  files['UNWRITABLE'] = join(dir, 'unwritable.yaml');
  await writeFile(files['CONFIG'], `stateDirectory: ${join(dir, 'state')}\nhealth: { port: ${port} }\n`);
  await writeFile(files['BAD'], 'tcpPorts: "70000"\n');
  await writeFile(join(dir, 'file'), 'not a directory');
  await writeFile(files['UNWRITABLE'], `stateDirectory: ${join(dir, 'file')}\nenforce: { nftables: { enabled: true } }\n`);
  // READONLY: an agent's TCP API as a user without the token sees it (sensor/health.ts): reads
  // answer, a change is 403 with permission denied
  readOnly = createHttpServer((request, response) => {
    response.writeHead(request.method === 'GET' ? 200 : 403, { 'content-type': 'application/json' });
    response.end(request.method === 'GET' ? '{"status":"ok","problems":[],"warnings":[]}' : '{"error":"forbidden: changes over TCP need the control socket","permission":"denied"}');
  });
  await new Promise<void>((resolve) => readOnly.listen(0, '127.0.0.1', resolve));
  files['READONLY'] = `http://127.0.0.1:${(readOnly.address() as { port: number }).port}`;
});

let readOnly: ReturnType<typeof createHttpServer>;

afterAll(async () => {
  readOnly.close();
  await rm(dir, { recursive: true, force: true });
});

describe('README.md exit codes', () => {
  it('lists every code from 0 to 7 with at least one example', () => {
    expect(rows.map((row) => row.code)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const row of rows) expect(row.examples.length, `exit ${row.code}`).toBeGreaterThan(0);
  });

  for (const { code, example } of cases) {
    it(`portsnare ${example} → ${code}`, async () => {
      const args = example.split(/\s+/).map((arg) => files[arg] ?? arg);
      const result = await runCli(args);
      expect(result.code, `${result.stdout}${result.stderr}`).toBe(code);
      if (code !== 0 && code !== 6) expect(result.stderr).toMatch(/^(portsnare: |error: )/m);
    });
  }
});
