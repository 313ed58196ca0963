import type { CoreBudget, CoreRelease } from '../../runtime/core-budget.js';

/** Label of the LLM's requests in a {@link CoreBudget} (what its observers see). */
export const LLM_CORE_LABEL = 'llm';

/**
 * The cores one llama.cpp context holds in a {@link CoreBudget} while any of its sequences generates.
 *
 * The context's sequences are evaluated together, in one batch on the context's own `threads`, so two generations
 * at once need the cores once, not twice: a generation that starts while another holds them joins that hold, unless
 * some other run is already waiting in the budget, in which case it queues behind that run (a stream of LLM calls
 * cannot starve the vision runs). The cores go back when the last generation holding them ends.
 *
 * @example
 * ```ts
 * const cores = new ContextCores({ budget, cores: 2 });
 * const release = await cores.acquire(signal);   // rejects with the signal's reason if aborted while waiting
 * try { await chat.generateResponse(history); } finally { release(); }
 * ```
 */
export class ContextCores {
  private readonly budget: CoreBudget;
  private readonly cores: number;
  private holders = 0;
  private release?: CoreRelease;
  /** This context's request waiting in the budget: generations that start meanwhile wait for it and share its grant. */
  private pending?: Promise<CoreRelease | undefined>;

  constructor(options: { budget: CoreBudget; cores: number }) {
    this.budget = options.budget;
    this.cores = Math.min(options.budget.cores, options.cores);
  }

  /** Generations of this context running on its cores now. */
  get active(): number {
    return this.holders;
  }

  /**
   * Resolves, once the context holds its cores, with the function that ends this generation's share (idempotent).
   *
   * @throws the signal's reason when it aborts before the cores are granted; nothing is then held.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    let waitedForPending = false;
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      // Joining a hold adds no threads; it waits only when someone else queued for cores meanwhile.
      if (this.release && (waitedForPending || this.budget.waiting === 0)) break;
      if (this.pending) {
        waitedForPending = true;
        await untilSettledOrAborted(this.pending, signal);
        continue;
      }
      const request = this.budget.acquire({ cores: this.cores, signal, label: LLM_CORE_LABEL });
      this.pending = request;
      let granted: CoreRelease | undefined;
      try {
        granted = await request;
      } finally {
        if (this.pending === request) this.pending = undefined;
      }
      if (!granted) throw signal?.reason ?? new DOMException('The generation was aborted while it waited for cores.', 'AbortError');
      // Granted while the context still held cores (the budget had more free): its threads already serve both.
      if (this.release) granted();
      else this.release = granted;
      break;
    }
    this.holders += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.holders -= 1;
      if (this.holders > 0) return;
      const release = this.release;
      this.release = undefined;
      release?.();
    };
  }
}

/** Waits for `promise` to settle, or rejects with the signal's reason as soon as it aborts. */
function untilSettledOrAborted(promise: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  if (!signal) return promise.then(() => undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
