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
  /**
   * Aborting it while the run waits takes the run out of the queue at once (the promise resolves with undefined and
   * holds nothing), so the runs behind it are not kept waiting for cores it will never use. No effect once granted.
   */
  signal?: AbortSignal;
  /** Who asks (`vqa`, `caption`, `llm`), for {@link CoreBudget.observe} listeners. */
  label?: string;
}

/** What a {@link CoreBudget} did, as its observers see it: after the change, `available` and `waiting` are current. */
export interface CoreBudgetEvent {
  /** `queue`: a request waits; `grant`: it got its cores; `release`: it gave them back; `cancel`: it left the queue without cores. */
  type: 'queue' | 'grant' | 'release' | 'cancel';
  label?: string;
  cores: number;
  available: number;
  waiting: number;
}

/** Returned by {@link CoreBudget.acquire}: gives the cores back. Calling it twice is harmless. */
export type CoreRelease = () => void;

interface Waiter {
  cores: number;
  order: number;
  sequence: number;
  cancel?: SharedArrayBuffer;
  label?: string;
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
  private readonly observers = new Set<(event: CoreBudgetEvent) => void>();

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
   * Calls `listener` after every change (a request queued, granted, released or cancelled), synchronously, so that
   * a test or a metric sees the order in which runs really got their cores (a listener that throws is reported as a
   * process warning and does not stop the budget). Returns the function that stops it.
   *
   * @example
   * const stop = budget.observe((event) => console.log(event.type, event.label, event.available));
   */
  observe(listener: (event: CoreBudgetEvent) => void): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  /**
   * Waits until `request.cores` are free and takes them. Resolves with the release function, or with undefined
   * when the request's cancel flag was set or its signal aborted while it waited (it then holds nothing).
   */
  acquire(request: CoreRequest): Promise<CoreRelease | undefined> {
    const cores = Math.min(this.cores, Math.max(1, Math.floor(request.cores)));
    const { signal, label } = request;
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        const index = this.queue.indexOf(waiter);
        if (index === -1) return;
        this.queue.splice(index, 1);
        this.emit('cancel', waiter);
        resolve(undefined);
        // The run that left may have been the head that blocked narrower runs behind it.
        this.dispatch();
      };
      const waiter: Waiter = {
        cores,
        order: performance.now() - (request.leadMs ?? 0),
        sequence: this.sequence++,
        cancel: request.cancel,
        label,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      // Sorted insert: queues hold a handful of runs.
      let index = this.queue.length;
      while (index > 0 && compare(this.queue[index - 1]!, waiter) > 0) index -= 1;
      this.queue.splice(index, 0, waiter);
      this.emit('queue', waiter);
      this.dispatch();
    });
  }

  private emit(type: CoreBudgetEvent['type'], waiter: Waiter): void {
    if (this.observers.size === 0) return;
    const event: CoreBudgetEvent = { type, label: waiter.label, cores: waiter.cores, available: this.free, waiting: this.queue.length };
    for (const listener of this.observers) {
      try {
        listener(event);
      } catch (error) {
        // An observer's bug must not leave a run without the cores it was just given.
        process.emitWarning(`A CoreBudget observer threw: ${(error as Error)?.message ?? String(error)}`);
      }
    }
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (isCancelled(head.cancel)) {
        this.queue.shift();
        this.emit('cancel', head);
        head.grant(undefined);
        continue;
      }
      if (head.cores > this.free) return;
      this.queue.shift();
      this.free -= head.cores;
      this.emit('grant', head);
      let released = false;
      head.grant(() => {
        if (released) return;
        released = true;
        this.free += head.cores;
        this.emit('release', head);
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

let shared: CoreBudget | undefined;

/**
 * The process's own budget of `os.availableParallelism()` cores, made on first call. The vision models draw from it
 * unless given `cores` or a budget of their own, and so does the embedded LLM, so that in one process the ONNX
 * graphs and llama.cpp take turns on the cores instead of spinning against each other.
 *
 * @example
 * const vision = await createVisionModels({ modelsDir: 'models' });       // draws from sharedCoreBudget()
 * const llm = createLocalChatModel({ model: 'qwen.gguf' });              // so does each generation
 */
export function sharedCoreBudget(): CoreBudget {
  shared ??= new CoreBudget();
  return shared;
}
