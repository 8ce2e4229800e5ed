import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../sensor/config';

const EXAMPLES = join(__dirname, '..', '..', 'examples');

describe('example configs', () => {
  it.each(readdirSync(EXAMPLES).filter((file) => /\.(ya?ml|json)$/.test(file)))('%s is a valid agent config', (file) => {
    expect(() => loadConfigFile(join(EXAMPLES, file))).not.toThrow();
  });

  it('refuses a decoy on the health port', () => {
    expect(() => loadConfigFile(join(EXAMPLES, '..', 'test', 'sensor', 'fixtures', 'health-clash.yaml'))).toThrow(/health\.port: 9466 is also a decoy TCP port/);
  });
});
