import { hostname } from 'node:os';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import type { EvalChain } from '../eval/run-eval.js';
import { toJobAnswer, type EvalJobData, type EvalJobResult } from './eval-job.js';
import { parseQueueUrl } from './queue-settings.js';
import { openRedis } from './redis-client.js';

/**
 * `started`: the worker took the job; `finished`: its answer is in the queue (acknowledged by BullMQ, so each job
 * finishes once, although a job whose lock expired may have been started and answered twice).
 */
export interface EvalWorkerEvent {
  type: 'started' | 'finished';
  jobId: string;
  questionId: EvalJobData['questionId'];
  worker: string;
  /** `finished` only: whether the pipeline refused the question (recorded as a failed question). */
  failed?: boolean;
}

export interface EvalWorkerOptions {
  /** `redis://host:port/db[?queue=NAME&prefix=PREFIX]`, as the producer's. */
  queue: string;
  /** The chain that answers: models are loaded once, before the worker takes its first job. */
  chain: EvalChain;
  /** Questions answered at once. Default 1 (the vision models already use every core for one question). */
  concurrency?: number;
  /**
   * How long a job stays this worker's without a sign of life. A worker that dies (kill -9, a lost machine) has its
   * jobs taken by another one after about this long; a live worker renews its locks every half of it. Default 30000.
   */
  lockDurationMs?: number;
  /** How many times a job may lose its worker before the queue gives up on it. Default 3. */
  maxStalledCount?: number;
  /** Shown in the producer's progress and in logs. Default `hostname:pid`. */
  name?: string;
  /** The flag the URL came from, for messages. Default `queue`. */
  source?: string;
  onEvent?: (event: EvalWorkerEvent) => void;
}

export interface EvalWorker {
  readonly name: string;
  /** Questions answered (acknowledged by the queue) so far. */
  readonly processed: number;
  /** Takes no more jobs and waits for those in hand to finish (a drain; SIGTERM in `vqa-llm worker`). */
  close(): Promise<void>;
}

export const EVAL_WORKER_DEFAULTS = { concurrency: 1, lockDurationMs: 30_000, maxStalledCount: 3 } as const;

/**
 * Answers evaluation questions from a BullMQ queue with a chain whose models are already loaded.
 *
 * @example
 * ```ts
 * const vision = await createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle' });
 * const worker = await startEvalWorker({ queue: 'redis://127.0.0.1:6379/0', chain: createVqaChain({ vision, llm: 'none' }) });
 * process.once('SIGTERM', () => void worker.close());
 * ```
 */
export async function startEvalWorker(options: EvalWorkerOptions): Promise<EvalWorker> {
  const settings = parseQueueUrl(options.queue, options.source ?? 'queue');
  const concurrency = options.concurrency ?? EVAL_WORKER_DEFAULTS.concurrency;
  const lockDuration = options.lockDurationMs ?? EVAL_WORKER_DEFAULTS.lockDurationMs;
  for (const [name, value] of [['concurrency', concurrency], ['lockDurationMs', lockDuration], ['maxStalledCount', options.maxStalledCount ?? 1]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError('invalid_value', `${name} must be a positive integer, got ${String(value)}.`);
  }
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const { Worker } = await import('bullmq');
  const connection = await openRedis(settings.connection, { role: 'queue' });
  let processed = 0;
  const worker = new Worker<EvalJobData, EvalJobResult>(
    settings.name,
    async (job) => {
      const { questionId, question, image } = job.data;
      const jobId = job.id ?? '';
      options.onEvent?.({ type: 'started', jobId, questionId, worker: name });
      let result: EvalJobResult;
      try {
        result = { worker: name, answer: toJobAnswer(await options.chain.invoke({ image, question })) };
      } catch (error) {
        const failure = error as { name?: string; code?: unknown; message?: string };
        result = { worker: name, error: { name: failure.name ?? 'Error', ...(typeof failure.code === 'string' ? { code: failure.code } : {}), message: failure.message ?? String(error) } };
      }
      return result;
    },
    {
      connection,
      prefix: settings.prefix,
      name,
      concurrency,
      lockDuration,
      // Checked as often as locks expire, so a dead worker's job waits about one lock duration, not the default 30 s.
      stalledInterval: lockDuration,
      maxStalledCount: options.maxStalledCount ?? EVAL_WORKER_DEFAULTS.maxStalledCount,
    },
  );
  worker.on('completed', (job, result) => {
    processed += 1;
    options.onEvent?.({ type: 'finished', jobId: job.id ?? '', questionId: job.data.questionId, worker: name, failed: result.error !== undefined });
  });
  // Connection errors are retried by ioredis, and an answer refused for a lost lock is someone else's job now;
  // without a listener each would print a stack.
  worker.on('error', () => undefined);
  await worker.waitUntilReady();
  return {
    name,
    get processed() {
      return processed;
    },
    async close() {
      await worker.close();
      connection.disconnect();
    },
  };
}
