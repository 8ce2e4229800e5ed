/**
 * The `stdout` sink (one JSON line per event: the `Scan Detected` detail, nothing else on stdout)
 * and the `file` sink (the same lines appended to a file).
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ScanDetected } from '../../core/event';
import { errorText, type Logger } from '../log';
import { countersOnly, type Publisher, type PublisherReport, type PublisherStats } from './types';

export class StdoutPublisher implements Publisher {
  readonly name = 'stdout';
  private published = 0;
  private errors = 0;

  constructor(private readonly stream: NodeJS.WritableStream = process.stdout) {}

  start(): Promise<void> {
    return Promise.resolve();
  }

  publish(event: ScanDetected): Promise<boolean> {
    return new Promise((resolve) => {
      this.stream.write(JSON.stringify(event) + '\n', (error) => {
        if (error) this.errors++;
        else this.published++;
        resolve(!error);
      });
    });
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  stats(): PublisherStats {
    return { published: this.published, dropped: this.errors, errors: this.errors };
  }

  describe(): PublisherReport {
    return countersOnly(this.name, this.stats());
  }
}

export class FilePublisher implements Publisher {
  readonly name: string;
  private handle?: FileHandle;
  private chain: Promise<unknown> = Promise.resolve();
  private published = 0;
  private errors = 0;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {
    this.name = `file:${path}`;
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.handle = await open(this.path, 'a', 0o640);
  }

  publish(event: ScanDetected): Promise<boolean> {
    const line = JSON.stringify(event) + '\n';
    const write = this.chain.then(async () => {
      if (!this.handle) throw new Error('file sink is not started');
      await this.handle.write(line);
    });
    this.chain = write.catch(() => undefined);
    return write.then(
      () => {
        this.published++;
        return true;
      },
      (error: unknown) => {
        this.errors++;
        this.logger.error('file sink: write failed', { path: this.path, error: errorText(error) });
        return false;
      },
    );
  }

  async stop(): Promise<void> {
    await this.chain;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) {
      await handle.sync().catch(() => undefined);
      await handle.close();
    }
  }

  stats(): PublisherStats {
    return { published: this.published, dropped: this.errors, errors: this.errors };
  }

  describe(): PublisherReport {
    return countersOnly(this.name, this.stats());
  }
}
