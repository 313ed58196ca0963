import { createHash, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { runEval, type EvalProgress, type RunEvalOptions, type RunEvalResult } from '../eval/run-eval.js';
import type { EvalJobData, EvalJobResult } from './eval-job.js';
import { createQueueChain } from './queue-chain.js';
import { parseQueueUrl } from './queue-settings.js';
import { openRedis } from './redis-client.js';

export interface QueuedEvalProgress extends EvalProgress {
  /** Answers this run collected, by worker name (`host:pid`). */
  byWorker: Record<string, number>;
}

export interface RunQueuedEvalOptions extends Omit<RunEvalOptions, 'chain' | 'concurrency' | 'onProgress'> {
  /** `redis://host:port/db[?queue=NAME&prefix=PREFIX]`: where the workers (`vqa-llm worker --queue`) take questions. */
  queue: string;
  /** The flag the URL came from, for messages. Default `queue`. */
  source?: string;
  /**
   * Questions in the queue at once, waiting or being answered: more than all workers' concurrency together.
   * Default: the URL's `?window=`, else 256.
   */
  window?: number;
  /** Days a finished job's answer waits in Redis for a producer that died to come back for it. Default 7. */
  keepDays?: number;
  onProgress?: (progress: QueuedEvalProgress) => void;
}

export const QUEUED_EVAL_DEFAULTS = { window: 256, keepDays: 7 } as const;

/**
 * Runs an evaluation on workers: the same predictions file, resume and summary as `runEval`, but each question is
 * a BullMQ job answered by any `vqa-llm worker` on the same queue. The producer holds `window` questions in the
 * queue, appends each answer as it arrives, and may die at any time: run again, it skips what the file has, and
 * collects the jobs that finished meanwhile instead of adding them again. A worker that dies mid-question loses
 * nothing: once its lock expires another worker answers it, and a question is answered (and counted) once.
 *
 * @example
 * ```ts
 * const dataset = await loadJsonlDataset('test/fixtures/eval/questions.jsonl');
 * const { summary } = await runQueuedEval({ dataset, queue: 'redis://127.0.0.1:6379/0', output: 'predictions.jsonl' });
 * ```
 */
export async function runQueuedEval(options: RunQueuedEvalOptions): Promise<RunEvalResult & { byWorker: Record<string, number> }> {
  const flag = options.source ?? 'queue';
  const settings = parseQueueUrl(options.queue, flag);
  const window = options.window ?? settings.window ?? QUEUED_EVAL_DEFAULTS.window;
  if (!Number.isInteger(window) || window < 1) throw new InvalidOptionError('invalid_value', `window must be a positive integer, got ${String(window)}.`);
  const keepSeconds = Math.round((options.keepDays ?? QUEUED_EVAL_DEFAULTS.keepDays) * 86_400);
  // bullmq loads here: processes that never get --queue never load it.
  const { Queue, QueueEvents } = await import('bullmq');
  const [connection, eventsConnection] = await Promise.all([openRedis(settings.connection, { role: 'queue' }), openRedis(settings.connection, { role: 'queue' })]);
  const queue = new Queue<EvalJobData, EvalJobResult>(settings.name, {
    connection,
    prefix: settings.prefix,
    // attempts 1: a question the pipeline refuses comes back as an answer with an error, and a dead worker's job is
    // retried by the stalled-job check, not by attempts.
    defaultJobOptions: { attempts: 1, removeOnComplete: { age: keepSeconds }, removeOnFail: { age: keepSeconds } },
  });
  const events = new QueueEvents(settings.name, { connection: eventsConnection, prefix: settings.prefix });
  const byWorker: Record<string, number> = {};
  let chain: ReturnType<typeof createQueueChain> | undefined;
  let released = 0;
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const runKey = await runKeyFor(connection, settings, options.output, options.fresh === true);
    chain = createQueueChain({ queue, events, runKey, onResult: (result) => (byWorker[result.worker] = (byWorker[result.worker] ?? 0) + 1) });
    const result = await runEval({
      dataset: options.dataset,
      chain,
      output: options.output,
      concurrency: window,
      limit: options.limit,
      fresh: options.fresh,
      signal: options.signal,
      onProgress: (progress) => {
        // runEval reports progress after each record is written, in the order the answers were taken.
        const written = progress.done - released;
        released = progress.done;
        if (written > 0) void chain?.release(written);
        options.onProgress?.({ ...progress, byWorker: { ...byWorker } });
      },
    });
    await chain.release(Number.MAX_SAFE_INTEGER);
    return { ...result, byWorker };
  } finally {
    chain?.close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    eventsConnection.disconnect();
  }
}

/**
 * The run's key, kept in Redis per output file: the same for a resumed run (so its job ids match), new with `fresh`
 * (so that answers left from the old run are not taken for the new one's).
 */
async function runKeyFor(client: Awaited<ReturnType<typeof openRedis>>, settings: { name: string; prefix: string }, output: string, fresh: boolean): Promise<string> {
  const key = `${settings.prefix}:${settings.name}:run:${createHash('sha256').update(resolve(output)).digest('hex').slice(0, 32)}`;
  const candidate = `r${randomBytes(6).toString('hex')}`;
  if (fresh) {
    await client.set(key, candidate);
    return candidate;
  }
  await client.set(key, candidate, 'NX');
  return (await client.get(key)) ?? candidate;
}
