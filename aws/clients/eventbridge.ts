/** The EventBridge client, created once per container. Loads only the EventBridge SDK. */
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { timedClientConfig } from './timeouts';

let client: EventBridgeClient | undefined;

export function eventBridgeClient(): EventBridgeClient {
  client ??= new EventBridgeClient(timedClientConfig());
  return client;
}
