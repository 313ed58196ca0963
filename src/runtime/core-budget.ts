import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { InvalidOptionError } from '../errors/invalid-option-error.js';

/** What a run asks of a {@link CoreBudget}. */
export interface CoreRequest {
  /** Cores the run keeps busy: its session's intra-op threads. Clamped to the budget. */
  cores: number;
  /**
   * Milliseconds by which the run goes ahead of runs queued up to that long before it. A question's VQA run gets a
   * lead over the caption run queued at the same moment, so the candidates come first, without letting a stream of
   * VQA runs starve the captions of earlier questions.
   */
  leadMs?: number;
  /** Int32Array(1) over a SharedArrayBuffer (the task's cancel flag): a run cancelled while queued never starts. */
  cancel?: SharedArrayBuffer;
}

/** Returned by {@link CoreBudget.acquire}: gives the cores back. Calling it twice is harmless. */
export type CoreRelease = () => void;

interface Waiter {
  cores: number;
  order: number;
  sequence: number;
  cancel?: SharedArrayBuffer;
  grant: (release: CoreRelease | undefined) => void;
}

/**
 * The cores the process may use, shared by every model's runs. A run starts only when the cores its session's
 * threads need are free, so concurrent requests split the machine instead of oversubscribing it: with sessions
 * of all-cores threads, one question's graphs run one after the other, each on every core, and many users' runs
 * queue rather than fight. Runs start in order of arrival, less their lead; a run never overtakes the head of the
 * queue by taking cores it would need (no starvation of wide runs).
 *
 * @example
 * const budget = new CoreBudget({ cores: 8 });
 * const release = await budget.acquire({ cores: 8 });
 * try { await runTheGraph(); } finally { release?.(); }
 */
export class CoreBudget {
  /** The cores this budget hands out. */
  readonly cores: number;
  private free: number;
  private sequence = 0;
  private readonly queue: Waiter[] = [];

  constructor(options: { cores?: number } = {}) {
    const cores = options.cores ?? availableParallelism();
    if (!Number.isInteger(cores) || cores < 1) throw new InvalidOptionError('invalid_value', `cores must be an integer of at least 1, got ${cores}.`);
    this.cores = cores;
    this.free = cores;
  }

  /** Cores not held by a running run. */
  get available(): number {
    return this.free;
  }

  /** Runs waiting for cores. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Waits until `request.cores` are free and takes them. Resolves with the release function, or with undefined
   * when the request's cancel flag was set while it waited (it then holds nothing).
   */
  acquire(request: CoreRequest): Promise<CoreRelease | undefined> {
    const cores = Math.min(this.cores, Math.max(1, Math.floor(request.cores)));
    return new Promise((grant) => {
      const waiter: Waiter = { cores, order: performance.now() - (request.leadMs ?? 0), sequence: this.sequence++, cancel: request.cancel, grant };
      // Sorted insert: queues hold a handful of runs.
      let index = this.queue.length;
      while (index > 0 && compare(this.queue[index - 1]!, waiter) > 0) index -= 1;
      this.queue.splice(index, 0, waiter);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (isCancelled(head.cancel)) {
        this.queue.shift();
        head.grant(undefined);
        continue;
      }
      if (head.cores > this.free) return;
      this.queue.shift();
      this.free -= head.cores;
      let released = false;
      head.grant(() => {
        if (released) return;
        released = true;
        this.free += head.cores;
        this.dispatch();
      });
    }
  }
}

function compare(left: Waiter, right: Waiter): number {
  return left.order - right.order || left.sequence - right.sequence;
}

function isCancelled(flag?: SharedArrayBuffer): boolean {
  return flag !== undefined && Atomics.load(new Int32Array(flag), 0) === 1;
}
