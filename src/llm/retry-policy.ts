/** Backoff settings of the LLM step's own retries. */
export interface RetryBackoff {
  /** First delay before jitter. Default 250 ms. */
  baseDelayMs?: number;
  /** Largest delay before jitter, retry-after aside. Default 4000 ms. */
  maxDelayMs?: number;
  /** Random source in [0, 1), for tests. Default `Math.random`. */
  random?: () => number;
}

/** Every default of the retry backoff. */
export const RETRY_BACKOFF_DEFAULTS = { baseDelayMs: 250, maxDelayMs: 4_000 } as const;

const RETRYABLE_STATUSES = new Set([408, 409, 425, 429, 500, 502, 503, 504]);
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

function header(error: unknown, name: string): string | undefined {
  for (const holder of [field(error, 'headers'), field(field(error, 'response'), 'headers')]) {
    if (holder === undefined || holder === null) continue;
    const value = typeof (holder as Headers).get === 'function' ? (holder as Headers).get(name) : (holder as Record<string, unknown>)[name];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/**
 * What the endpoint asked a client to wait, in ms: `retry-after-ms` (OpenAI's), else `retry-after` as seconds or
 * an HTTP date; `undefined` when it said nothing.
 *
 * @example
 * ```ts
 * retryAfterMs({ status: 429, headers: new Headers({ 'retry-after': '2' }) }); // 2000
 * ```
 */
export function retryAfterMs(error: unknown, now: number = Date.now()): number | undefined {
  const ms = Number(header(error, 'retry-after-ms'));
  if (header(error, 'retry-after-ms') !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const value = header(error, 'retry-after')?.trim();
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Whether an LLM error is worth another attempt: rate limits, server errors, timeouts of one attempt, dropped
 * connections. Client errors (400, 401, 404) and unusable replies are not: the same request fails the same way.
 *
 * @example
 * ```ts
 * isRetryableLlmError({ status: 503 }); // true
 * isRetryableLlmError({ status: 401 }); // false
 * ```
 */
export function isRetryableLlmError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && current !== null && depth < 5; depth += 1) {
    const status = field(current, 'status');
    if (typeof status === 'number') return RETRYABLE_STATUSES.has(status);
    const name = field(current, 'name');
    const code = field(current, 'code');
    if (name === 'APIConnectionError' || name === 'APIConnectionTimeoutError') return true;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
    current = field(current, 'cause');
  }
  return false;
}

/**
 * The wait before retry number `attempt` (1 for the first retry): exponential backoff with "equal jitter" (half
 * fixed, half random, so that a crowd of clients spreads out without any of them retrying at once), and never less
 * than what the endpoint's retry-after asked for.
 *
 * @example
 * ```ts
 * retryDelayMs(1, { status: 500 }); // 125-250 ms
 * retryDelayMs(1, { status: 429, headers: new Headers({ 'retry-after': '3' }) }); // at least 3000 ms
 * ```
 */
export function retryDelayMs(attempt: number, error: unknown, backoff: RetryBackoff = {}): number {
  const base = backoff.baseDelayMs ?? RETRY_BACKOFF_DEFAULTS.baseDelayMs;
  const max = backoff.maxDelayMs ?? RETRY_BACKOFF_DEFAULTS.maxDelayMs;
  const random = backoff.random ?? Math.random;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  const jittered = ceiling / 2 + random() * (ceiling / 2);
  return Math.max(jittered, retryAfterMs(error) ?? 0);
}
