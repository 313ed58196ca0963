/** Counts the queue reports, for metrics. */
export interface RequestQueueState {
  running: number;
  waiting: number;
}

/**
 * Runs at most `concurrency` tasks at once, the rest in arrival order. A waiting task whose signal aborts leaves
 * the queue at once, so a client that hung up costs nothing. Bounding the waiting line (and rejecting with 503 when
 * it is full) belongs here too; the hardening issue adds it.
 */
export interface RequestQueue {
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Waits for a slot and returns its release function (safe to call twice), for work that outlives one promise: a stream. */
  acquire(signal?: AbortSignal): Promise<() => void>;
  readonly state: RequestQueueState;
}

/**
 * @example
 * ```ts
 * const queue = createRequestQueue({ concurrency: 4, onChange: (state) => gauge.set(state.waiting) });
 * const result = await queue.run(() => chain.invoke(input), request.signal);
 * ```
 */
export function createRequestQueue(options: { concurrency: number; onChange?: (state: RequestQueueState) => void }): RequestQueue {
  const { concurrency, onChange } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}.`);
  let running = 0;
  const waiting: (() => void)[] = [];
  const state = (): RequestQueueState => ({ running, waiting: waiting.length });

  const release = (): void => {
    running -= 1;
    const next = waiting.shift();
    if (next) next();
    onChange?.(state());
  };

  const acquire = (signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted();
    if (running < concurrency) {
      running += 1;
      onChange?.(state());
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const start = (): void => {
        signal?.removeEventListener('abort', onAbort);
        running += 1;
        resolve();
      };
      const onAbort = (): void => {
        const index = waiting.indexOf(start);
        if (index >= 0) waiting.splice(index, 1);
        onChange?.(state());
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      waiting.push(start);
      onChange?.(state());
    });
  };

  const acquireOnce = async (signal?: AbortSignal): Promise<() => void> => {
    await acquire(signal);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
    };
  };

  return {
    async run(task, signal) {
      const done = await acquireOnce(signal);
      try {
        return await task();
      } finally {
        done();
      }
    },
    acquire: acquireOnce,
    get state() {
      return state();
    },
  };
}
