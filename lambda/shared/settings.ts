/** The pipeline settings from the environment (PORTSNARE_SETTINGS), validated once. */
import { formatZodError } from '../../core/event';
import { PipelineSettingsSchema, SETTINGS_ENV, type PipelineSettings } from '../../core/settings';

export function loadSettings(env: NodeJS.ProcessEnv = process.env): PipelineSettings {
  const raw = env[SETTINGS_ENV];
  let input: unknown = {};
  if (raw !== undefined && raw.trim() !== '') {
    try {
      input = JSON.parse(raw);
    } catch (error) {
      throw new Error(`${SETTINGS_ENV} is not JSON: ${(error as Error).message}`);
    }
  }
  const parsed = PipelineSettingsSchema.safeParse(input);
  if (!parsed.success) throw new Error(`${SETTINGS_ENV}: ${formatZodError(parsed.error)}`);
  return parsed.data;
}

export { requireEnv } from './env';
