/** Counts the queue reports, for metrics. */
export interface RequestQueueState {
  running: number;
  waiting: number;
}

/** Thrown by `acquire` when every slot is busy and the waiting line is full: the server answers 503 at once. */
export class QueueFullError extends Error {
  constructor(limits: { concurrency: number; maxWaiting: number }) {
    super(`The server is at capacity: ${limits.concurrency} requests in flight and ${limits.maxWaiting} waiting.`);
    this.name = 'QueueFullError';
  }
}

/**
 * Runs at most `concurrency` tasks at once, the rest in arrival order, and at most `maxWaiting` of them waiting: one
 * more is refused at once with {@link QueueFullError} rather than queued behind work it will time out waiting for.
 * A waiting task whose signal aborts (its client hung up, its deadline passed) leaves the queue at once.
 */
export interface RequestQueue {
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Waits for a slot and returns its release function (safe to call twice), for work that outlives one promise: a stream. */
  acquire(signal?: AbortSignal): Promise<() => void>;
  /** Whether a new request would be refused now; checked before a request's body is read. */
  readonly full: boolean;
  readonly state: RequestQueueState;
}

/**
 * @example
 * ```ts
 * const queue = createRequestQueue({ concurrency: 4, maxWaiting: 32, onChange: (state) => gauge.set(state.waiting) });
 * const result = await queue.run(() => chain.invoke(input), request.signal);
 * ```
 */
export function createRequestQueue(options: { concurrency: number; maxWaiting?: number; onChange?: (state: RequestQueueState) => void }): RequestQueue {
  const { concurrency, onChange } = options;
  const maxWaiting = options.maxWaiting ?? Number.POSITIVE_INFINITY;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}.`);
  if (maxWaiting !== Number.POSITIVE_INFINITY && (!Number.isInteger(maxWaiting) || maxWaiting < 0)) throw new RangeError(`maxWaiting must be a non-negative integer, got ${maxWaiting}.`);
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
    if (waiting.length >= maxWaiting) return Promise.reject(new QueueFullError({ concurrency, maxWaiting }));
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
    get full() {
      return running >= concurrency && waiting.length >= maxWaiting;
    },
    get state() {
      return state();
    },
  };
}
