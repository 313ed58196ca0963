import { InvalidOptionError } from '../errors/index.js';

/** `closed`: calls go through. `open`: calls are refused at once. `half-open`: one probe call decides which next. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** How a guarded call ended: `failure` counts toward opening; `ignored` (the caller gave up) counts for nothing. */
export type CallOutcome = 'success' | 'failure' | 'ignored';

/** Permission for one call; `release` it exactly once (later calls are no-ops). */
export interface CircuitPermit {
  release(outcome: CallOutcome): void;
}

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before one probe call may try again. Default 30000 ms. */
  resetTimeoutMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
  /** Called on every state change, e.g. to set a metrics gauge. */
  onStateChange?: (state: CircuitState, previous: CircuitState) => void;
}

/** Every default of {@link createCircuitBreaker}. */
export const CIRCUIT_BREAKER_DEFAULTS = { failureThreshold: 5, resetTimeoutMs: 30_000 } as const;

/**
 * A circuit breaker for a dependency that may be down (the LLM endpoint). Written here rather than taken from a
 * library because the guarded call is an async generator that streams text: a wrapper around a promise-returning
 * function (opossum's model) cannot say when a stream that already yielded has failed. The caller asks for a permit
 * before the call and releases it with the outcome.
 */
export interface CircuitBreaker {
  readonly state: CircuitState;
  /** A permit when a call may go ahead; `undefined` when the circuit is open (or a half-open probe is already out). */
  tryAcquire(): CircuitPermit | undefined;
  /** Milliseconds until an open circuit lets a probe through; 0 when not open. */
  retryInMs(): number;
}

function checkInteger(name: string, value: number, minimum: number): number {
  if (!Number.isInteger(value) || value < minimum) throw new InvalidOptionError('invalid_value', `${name} must be an integer of at least ${minimum}, got ${String(value)}.`);
  return value;
}

/**
 * @example
 * ```ts
 * const breaker = createCircuitBreaker({ failureThreshold: 5, resetTimeoutMs: 30_000 });
 * const chain = createVqaChain({ vision, llm, llmCircuitBreaker: breaker });
 * breaker.state; // 'closed', 'open' after 5 LLM failures in a row, 'half-open' while one probe call runs
 * ```
 */
export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  const failureThreshold = checkInteger('failureThreshold', options.failureThreshold ?? CIRCUIT_BREAKER_DEFAULTS.failureThreshold, 1);
  const resetTimeoutMs = checkInteger('resetTimeoutMs', options.resetTimeoutMs ?? CIRCUIT_BREAKER_DEFAULTS.resetTimeoutMs, 1);
  const now = options.now ?? Date.now;
  let state: CircuitState = 'closed';
  let failures = 0;
  let openedAt = 0;
  let probeOut = false;

  const moveTo = (next: CircuitState): void => {
    if (next === state) return;
    const previous = state;
    state = next;
    options.onStateChange?.(next, previous);
  };
  const open = (): void => {
    openedAt = now();
    moveTo('open');
  };

  const permit = (isProbe: boolean): CircuitPermit => {
    let released = false;
    return {
      release(outcome) {
        if (released) return;
        released = true;
        if (isProbe) probeOut = false;
        if (outcome === 'ignored') return;
        if (outcome === 'success') {
          failures = 0;
          moveTo('closed');
          return;
        }
        failures += 1;
        // A failed probe reopens at once; a closed circuit opens after the threshold.
        if (isProbe || state === 'half-open' || failures >= failureThreshold) open();
      },
    };
  };

  return {
    get state() {
      // Reported as half-open once the wait is over, even before a call arrives to probe.
      return state === 'open' && now() - openedAt >= resetTimeoutMs ? 'half-open' : state;
    },
    tryAcquire() {
      if (state === 'closed') return permit(false);
      if (state === 'open') {
        if (now() - openedAt < resetTimeoutMs) return undefined;
        moveTo('half-open');
      }
      if (probeOut) return undefined;
      probeOut = true;
      return permit(true);
    },
    retryInMs() {
      return state === 'open' ? Math.max(0, resetTimeoutMs - (now() - openedAt)) : 0;
    },
  };
}
