/**
 * Reconnect delays: exponential backoff with full jitter, so that clients
 * that lost the same server do not all come back in the same instant.
 */

export interface BackoffPolicy {
  /** The ceiling of the first delay, in ms. */
  minDelayMs: number;
  /** The largest ceiling, in ms. */
  maxDelayMs: number;
}

/**
 * The delay before attempt number `attempt` (1 for the first retry): a
 * random value in [ceiling / 2, ceiling], the ceiling doubling from
 * `minDelayMs` up to `maxDelayMs`. Half the ceiling is kept as a floor so a
 * retry never comes at once after a failure.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
