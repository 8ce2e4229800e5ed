/** The decide function's burst gate on a test table (the wire tests' dependency builder). */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BurstGate } from '../../lambda/decide/burst';
import type { Clock } from '../../lambda/shared/clock';

export function burstGateFor(doc: DynamoDBDocumentClient, tableName: string, clock: Clock): BurstGate {
  return new BurstGate(doc, tableName, clock);
}
