/**
 * The WAFV2 clients, created once per container. CLOUDFRONT-scope IP sets live in us-east-1, so
 * that scope gets its own client.
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_IPSet.html (Scope)
 */
import { WAFV2Client } from '@aws-sdk/client-wafv2';
import { timedClientConfig } from './timeouts';

const clients: { REGIONAL?: WAFV2Client; CLOUDFRONT?: WAFV2Client } = {};

export function wafClients(): { REGIONAL: WAFV2Client; CLOUDFRONT: WAFV2Client } {
  clients.REGIONAL ??= new WAFV2Client(timedClientConfig());
  clients.CLOUDFRONT ??= new WAFV2Client({ ...timedClientConfig(), region: 'us-east-1' });
  return { REGIONAL: clients.REGIONAL, CLOUDFRONT: clients.CLOUDFRONT };
}
