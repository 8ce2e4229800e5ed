/** Runs the `portsnare` command line in-process with captured output, or as a child process. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { run } from '../../bin/commands/program';
import { type CliDeps, defaultDeps } from '../../bin/commands';

export const REPO = join(__dirname, '..', '..');
export const BIN = join(REPO, 'bin', 'portsnare.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment for commands in tests: no AWS profile or keys from the host, and never IMDS. */
export function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^AWS_|^PORTSNARE_/.test(name)) env[name] = value;
  }
  return { ...env, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent/aws-config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials', ...extra };
}

export async function runCli(args: readonly string[], overrides: Partial<CliDeps> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const deps = defaultDeps({
    io: {
      out: (text) => void (stdout += text.endsWith('\n') ? text : `${text}\n`),
      err: (text) => void (stderr += text.endsWith('\n') ? text : `${text}\n`),
    },
    env: testEnv(),
    ...overrides,
  });
  const code = await run(args, deps);
  return { code, stdout, stderr };
}

/** bin/portsnare.js in a child process, as an operator runs it. */
export function runBin(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return runCommand(process.execPath, [BIN, ...args], options);
}

/** Any command in a child process: its exit code and output (killed after timeoutMs). */
export function runCommand(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { cwd: options.cwd ?? REPO, env: options.env ?? testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}
