import { LocalLlmError } from '../../errors/index.js';

/** One borrowed slot; `release` it exactly once (later calls do nothing). */
export interface SlotLease<T> {
  slot: T;
  release(): void;
}

interface Waiter<T> {
  resolve(lease: SlotLease<T>): void;
  reject(error: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * A fixed set of slots (the model's context sequences) lent one request at a time, with a bounded FIFO queue of
 * requests waiting for one. The slot freed last is lent first: it holds the most recent conversation in its KV
 * cache, so a follow-up question reuses the evaluated prefix instead of evaluating the whole prompt again.
 *
 * @example
 * ```ts
 * const pool = new SlotPool({ slots: [a, b], maxQueue: 8 });
 * const lease = await pool.acquire(signal);
 * try { await use(lease.slot); } finally { lease.release(); }
 * ```
 */
export class SlotPool<T> {
  private readonly free: T[];
  private readonly waiters: Waiter<T>[] = [];
  private readonly maxQueue: number;
  private disposed = false;

  constructor(options: { slots: readonly T[]; maxQueue: number }) {
    this.free = [...options.slots];
    this.maxQueue = options.maxQueue;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiters.length;
  }

  /**
   * A slot, now or when one is released. Rejects with `busy` when the queue is full, with the signal's reason when it
   * aborts while waiting (the request leaves the queue), and with `disposed` after {@link dispose}.
   */
  acquire(signal?: AbortSignal): Promise<SlotLease<T>> {
    if (this.disposed) return Promise.reject(new LocalLlmError('disposed', 'The local model was disposed.'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const slot = this.free.pop();
    if (slot !== undefined) return Promise.resolve(this.lease(slot));
    if (this.waiters.length >= this.maxQueue) {
      return Promise.reject(
        new LocalLlmError('busy', `The local model is answering as many requests as it has sequences, and ${this.maxQueue} more are waiting.`, {
          hint: 'Retry later, or raise the local model\'s sequences / maxQueue.',
        }),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.waiters.indexOf(waiter);
          if (index !== -1) this.waiters.splice(index, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /** Refuses new requests and rejects those waiting; slots already lent are the caller's to finish. */
  dispose(): void {
    this.disposed = true;
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new LocalLlmError('disposed', 'The local model was disposed.'));
    }
  }

  private lease(slot: T): SlotLease<T> {
    let released = false;
    return {
      slot,
      release: () => {
        if (released) return;
        released = true;
        const waiter = this.waiters.shift();
        if (!waiter) {
          this.free.push(slot);
          return;
        }
        if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
        waiter.resolve(this.lease(slot));
      },
    };
  }
}
