import type { CoreBudget } from './core-budget.js';
import type { Executor } from './executor.js';
import type { WorkerTask } from './worker-protocol.js';

export interface BudgetedExecutorOptions {
  budget: CoreBudget;
  /** Cores one run of this model keeps busy: its sessions' intra-op threads. */
  cores: number;
  /** Lead of this model's runs over runs queued before them, in ms (see {@link CoreRequest.leadMs}). */
  leadMs?: number;
}

/**
 * An executor whose inference runs draw their cores from a shared {@link CoreBudget}; loads go straight through,
 * so both models still load side by side. A run cancelled while it waits for cores never reaches the worker: it
 * resolves as the worker would for a run cancelled before its first graph, with `cancelled: true` and no output.
 *
 * @example
 * const executor = budgetExecutor(createExecutor({ workers: 1 }), { budget, cores: budget.cores, leadMs: 100 });
 */
export function budgetExecutor(inner: Executor, options: BudgetedExecutorOptions): Executor {
  let queued = 0;
  return {
    get pending() {
      return inner.pending + queued;
    },
    async run<T>(task: WorkerTask, runOptions?: { signal?: AbortSignal }): Promise<T> {
      if (task.type === 'load') return inner.run<T>(task, runOptions);
      queued += 1;
      let release;
      try {
        release = await options.budget.acquire({ cores: options.cores, leadMs: options.leadMs, cancel: task.cancel, signal: runOptions?.signal, label: task.type });
      } finally {
        queued -= 1;
      }
      if (!release) return cancelledResult(task) as T;
      try {
        return await inner.run<T>(task, runOptions);
      } finally {
        release();
      }
    },
    destroy: () => inner.destroy(),
  };
}

function cancelledResult(task: WorkerTask): unknown {
  if (task.type === 'caption') return { tokenIds: [], cancelled: true, timings: { crossAttention: 0, decoder: 0, steps: 0 } };
  return { logits: new Float32Array(0), cancelled: true, timings: { fusion: 0 } };
}
