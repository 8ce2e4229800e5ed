/**
 * The Security Hub client, created once per container. Loads only the Security Hub SDK. One
 * attempt per call: lambda/findings/exporter.ts paces its calls and retries a throttled one
 * itself (with its injected clock), so the SDK's own retries would only add unpaced calls.
 */
import { SecurityHubClient } from '@aws-sdk/client-securityhub';
import { timedClientConfig } from './timeouts';

let client: SecurityHubClient | undefined;

export function securityHubClient(): SecurityHubClient {
  client ??= new SecurityHubClient({ ...timedClientConfig(), maxAttempts: 1 });
  return client;
}
