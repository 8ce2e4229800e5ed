/** Who asks for a change: recorded with every manual block and unblock. */
import { hostname, userInfo } from 'node:os';

export function requester(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep "unknown"
  }
  return `portsnare-cli:${user}@${hostname()}`;
}
