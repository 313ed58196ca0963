// Work that an AbortSignal cannot stop (a libvips decode on libuv's thread pool, a graph run in a worker thread) goes
// on after its caller gave up. A server that frees the caller's slot at that moment admits new work onto a decoder that
// is still busy; this ledger lets it hold the slot until the work really ends.
import { AsyncLocalStorage } from 'node:async_hooks';

const ledgers = new AsyncLocalStorage<Set<Promise<void>>>();
const ledgerOf = new WeakMap<UncancellableWork, Set<Promise<void>>>();
/** What a call left running: `settled()` resolves once every piece of uncancellable work it started has ended. */
export interface UncancellableWork {
  settled(): Promise<void>;
  /** Pieces still running. */
  readonly pending: number;
}

/**
 * Records `promise` as uncancellable work of the current call, when a caller asked with
 * {@link runWithUncancellableWork}; otherwise does nothing. Returns the promise unchanged.
 *
 * @example
 * ```ts
 * const pixels = await trackUncancellable(sharp(bytes).raw().toBuffer());
 * ```
 */
export function trackUncancellable<T>(promise: Promise<T>): Promise<T> {
  const ledger = ledgers.getStore();
  if (ledger) {
    const settled: Promise<void> = promise.then(
      () => {
        ledger.delete(settled);
      },
      () => {
        ledger.delete(settled);
      },
    );
    ledger.add(settled);
  }
  return promise;
}

/**
 * Runs `task` with a ledger of the uncancellable work it starts (anywhere below it in the same async flow).
 *
 * @example
 * ```ts
 * const { result, work } = runWithUncancellableWork(() => chain.invoke(input, { signal }));
 * try { return await result; } finally { void work.settled().then(releaseSlot); }
 * ```
 */
export function runWithUncancellableWork<T>(task: () => Promise<T>): { result: Promise<T>; work: UncancellableWork } {
  const ledger = new Set<Promise<void>>();
  const result = ledgers.run(ledger, task);
  const work: UncancellableWork = {
    async settled() {
      while (ledger.size > 0) await Promise.all([...ledger]);
    },
    get pending() {
      return ledger.size;
    },
  };
  ledgerOf.set(work, ledger);
  return { result, work };
}

/** Runs `task` inside an existing ledger, for work resumed later in another async flow (a stream's next chunk). */
export function continueUncancellableWork<T>(work: UncancellableWork, task: () => Promise<T>): Promise<T> {
  const ledger = ledgerOf.get(work);
  return ledger ? ledgers.run(ledger, task) : task();
}
