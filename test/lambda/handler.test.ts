import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { entryPoint, instrument } from '../../lambda/shared/handler';
import { RecordingObservability } from '../fakes/observability';
import { lambdaContext } from './context';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

describe('instrument (per invocation)', () => {
  it('adds the context before the body runs and flushes once after it', async () => {
    const obs = new RecordingObservability();
    const handle = instrument(obs, async (event: { n: number }) => {
      obs.log.info('working');
      expect(obs.flushes).toBe(0);
      return event.n * 2;
    });
    await expect(handle({ n: 21 }, lambdaContext({ requestId: 'req-a' }))).resolves.toBe(42);
    expect(obs.flushes).toBe(1);
    expect(obs.logged('working')[0]?.requestId).toBe('req-a');
  });

  it('flushes when the body throws, and throws the body’s own error', async () => {
    const obs = new RecordingObservability();
    const failure = new Error('table unreachable');
    const handle = instrument(obs, async () => {
      obs.count('Throttles');
      throw failure;
    });
    await expect(handle(undefined, lambdaContext())).rejects.toBe(failure);
    expect(obs.flushes).toBe(1);
  });

  it('does not let a failing flush hide the body’s error or fail finished work', async () => {
    const obs = new RecordingObservability();
    obs.flush = () => {
      throw new Error('EMF serialisation failed');
    };
    const failure = new Error('body failed');
    await expect(instrument(obs, async () => Promise.reject(failure))(undefined)).rejects.toBe(failure);
    await expect(instrument(obs, async () => 'done')(undefined)).resolves.toBe('done');
    expect(obs.logged('could not publish metrics')).toHaveLength(2);
  });

  it('runs without a context (tests, the benchmark): nothing is added, metrics still flush', async () => {
    const obs = new RecordingObservability();
    await instrument(obs, async () => 'ok')(undefined);
    expect(obs.contexts).toEqual([]);
    expect(obs.flushes).toBe(1);
  });
});

describe('entryPoint (per container)', () => {
  it('builds the dependencies on the first invocation only', async () => {
    const create = vi.fn(() => instrument(new RecordingObservability(), async (event: number) => event + 1));
    const handler = entryPoint(create);
    expect(create).not.toHaveBeenCalled(); // importing a handler builds nothing
    await expect(handler(1, lambdaContext({ requestId: 'r1' }))).resolves.toBe(2);
    await expect(handler(2, lambdaContext({ requestId: 'r2' }))).resolves.toBe(3);
    expect(create).toHaveBeenCalledTimes(1);
  });

  it('fails the invocation when building fails, and builds again on the next one', async () => {
    let attempt = 0;
    const handler = entryPoint(() => {
      if (++attempt === 1) throw new Error('environment variable TABLE_NAME is not set');
      return instrument(new RecordingObservability(), async () => 'built');
    });
    await expect(handler(undefined, lambdaContext())).rejects.toThrow('TABLE_NAME');
    await expect(handler(undefined, lambdaContext())).resolves.toBe('built');
    expect(attempt).toBe(2);
  });
});

describe('a function’s Lambda entry with the real Powertools Logger', () => {
  it('writes the request id, the cold-start flag and the function name into every log line', async () => {
    // What the Lambda runtime sets for an on-demand container; the Logger reads it when built.
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    vi.stubEnv('ENFORCE_QUEUE_URL', 'https://sqs.eu-west-1.amazonaws.com/123456789012/portsnare-enforce.fifo');
    vi.stubEnv('POWERTOOLS_DEV', '');
    const sqs = mockClient(SQSClient);
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm-1' });
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const warned: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      warned.push(String(chunk));
      return true;
    });
    // a fresh module: its per-container state starts empty, as in a new container
    vi.resetModules();
    const { handler } = await import('../../lambda/reconcile/handler');

    await handler({}, lambdaContext({ requestId: 'req-cold', functionName: 'portsnare-reconcile' }));
    await handler({}, lambdaContext({ requestId: 'req-warm', functionName: 'portsnare-reconcile' }));
    sqs.restore();

    const lines = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.trim().startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const requested = lines.filter((line) => line.message === 'reconcile requested');
    expect(requested).toHaveLength(2);
    expect(requested[0]).toMatchObject({
      level: 'INFO',
      service: 'portsnare',
      function_request_id: 'req-cold',
      cold_start: true,
      function_name: 'portsnare-reconcile',
      function_arn: 'arn:aws:lambda:eu-west-1:123456789012:function:portsnare-reconcile',
    });
    expect(requested[1]).toMatchObject({ function_request_id: 'req-warm', cold_start: false, function_name: 'portsnare-reconcile' });
    // nothing was counted, so nothing is published and nothing warns about it
    expect(lines.filter((line) => line.level === 'WARN' || '_aws' in line)).toEqual([]);
    expect(warned.join('')).not.toMatch(/metrics/i);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(2);
  });
});
