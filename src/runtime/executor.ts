import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { InferenceError } from '../errors/inference-error.js';
import { deserializeError, isSerializedError } from './serialized-error.js';
import { handleTask, releaseModels } from './task-handler.js';
import type { WorkerTask } from './worker-protocol.js';

/** Runs inference tasks somewhere: a pool of worker threads, or (for debugging) the calling thread. */
export interface Executor {
  run<T>(task: WorkerTask, options?: { signal?: AbortSignal }): Promise<T>;
  /** Tasks running or queued. */
  readonly pending: number;
  destroy(): Promise<void>;
}

export interface ExecutorOptions {
  /** Worker threads for this model. 0 runs inference on the calling thread (blocks its event loop). Default 1. */
  workers?: number;
}

/**
 * A piscina pool whose workers each hold the model's sessions. One pool per model, so the captioner and the VQA
 * model run concurrently and each is loaded once per worker.
 */
class WorkerExecutor implements Executor {
  private readonly pool: Piscina;

  constructor(workers: number) {
    this.pool = new Piscina({
      filename: new URL('./inference-worker.js', import.meta.url).href,
      minThreads: workers,
      maxThreads: workers,
      // Loaded sessions live in the worker: never let an idle worker exit and drop them.
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
    });
  }

  get pending(): number {
    return this.pool.queueSize + this.pool.utilization * this.pool.threads.length;
  }

  async run<T>(task: WorkerTask, options: { signal?: AbortSignal } = {}): Promise<T> {
    // No signal goes to piscina: it kills a worker whose running task is aborted, and the loaded sessions with it.
    // Callers cancel cooperatively through the task's shared cancel flag instead.
    void options;
    const result: unknown = await this.pool.run(task);
    if (isSerializedError(result)) throw deserializeError(result);
    return result as T;
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}

class InProcessExecutor implements Executor {
  pending = 0;
  private readonly models = new Set<string>();

  async run<T>(task: WorkerTask): Promise<T> {
    this.models.add(task.model.key);
    this.pending += 1;
    try {
      return (await handleTask(task)) as T;
    } finally {
      this.pending -= 1;
    }
  }

  async destroy(): Promise<void> {
    await releaseModels([...this.models]);
  }
}

export function createExecutor(options: ExecutorOptions = {}): Executor {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 0) throw new InferenceError('worker_failed', `workers must be an integer >= 0, got ${workers}.`);
  return workers === 0 ? new InProcessExecutor() : new WorkerExecutor(workers);
}

/** Threads per session so that all workers together use the machine's cores once. */
export function defaultThreadsPerWorker(totalWorkers: number): number {
  return Math.max(1, Math.floor(availableParallelism() / Math.max(1, totalWorkers)));
}
