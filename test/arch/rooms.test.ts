/**
 * The rooms of ARCHITECTURE.md, as imports: the AWS adapters (aws/) are shared by the functions
 * (lambda/) and the command line (bin/), so neither bin/ nor aws/ reaches into lambda/ (issue 20:
 * "the CLI stops importing lambda/shared"), core/ imports nothing outside core/, and sensor/
 * (the host agent) does not depend on the cloud adapters.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Each relative import of a file, as a path from the repository root. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    found.push(relative(ROOT, resolve(join(ROOT, file, '..'), match[1]!)));
  }
  return found;
}

function offenders(room: string, forbidden: (target: string) => boolean): string[] {
  return sources(room).flatMap((file) => importsOf(file).filter(forbidden).map((target) => `${file} → ${target}`));
}

describe('rooms', () => {
  it('bin/ and aws/ never import lambda/', () => {
    const intoLambda = (target: string) => target === 'lambda' || target.startsWith('lambda/');
    expect([...offenders('bin', intoLambda), ...offenders('aws', intoLambda)]).toEqual([]);
  });

  it('core/ imports only core/', () => {
    expect(offenders('core', (target) => !target.startsWith('core/'))).toEqual([]);
  });

  it('sensor/ imports neither lambda/ nor aws/', () => {
    expect(offenders('sensor', (target) => target.startsWith('lambda/') || target.startsWith('aws/'))).toEqual([]);
  });

  it('the Docker image copies every folder the command line bundle (bin/portsnare.ts) imports from', () => {
    const seen = new Set<string>();
    const queue = ['bin/portsnare.ts'];
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      if (seen.has(file)) continue;
      seen.add(file);
      for (const target of importsOf(file)) {
        for (const candidate of [`${target}.ts`, `${target}/index.ts`, target]) {
          if (candidate.endsWith('.ts') && existsSync(join(ROOT, candidate))) {
            queue.push(candidate);
            break;
          }
        }
      }
    }
    const folders = [...new Set([...seen].map((file) => file.split('/')[0]!))].filter((folder) => folder !== 'scripts').sort();
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(folders).toContain('aws');
    expect(folders.filter((folder) => !dockerfile.includes(`COPY ${folder}/ ${folder}/`))).toEqual([]);
  });

  it('finds imports at all (the check can fail)', () => {
    expect(importsOf('aws/repository.ts')).toContain('core/table');
  });
});
