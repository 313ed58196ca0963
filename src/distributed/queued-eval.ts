import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { parsePredictions } from '../eval/predictions.js';
import { runEval, type EvalProgress, type RunEvalOptions, type RunEvalResult } from '../eval/run-eval.js';
import type { EvalQuestion } from '../eval/types.js';
import type { QueueJobData } from './eval-job.js';
import { createImageJobProducer } from './image-job-producer.js';
import { deleteRunImages } from './image-store.js';
import { createQueueChain } from './queue-chain.js';
import { parseQueueUrl, QUEUE_DEFAULTS } from './queue-settings.js';
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
   * Questions awaited at once, waiting or being answered: more than all workers' concurrency together. An image's
   * questions go to the queue together, when the first of them is asked; its bytes stay in Redis until its answers
   * are written, so at most this many images are there at once. Default: the URL's `?window=`, else 256.
   */
  window?: number;
  /** Days a finished job's answer waits in Redis for a producer that died to come back for it. Default 7. */
  keepDays?: number;
  /**
   * Seconds an image's bytes stay in Redis without this producer refreshing them (it does while it waits for their
   * job, and deletes them once the image's answers are written). Default: the URL's `?imageTtl=`, else 86400.
   */
  imageTtlSeconds?: number;
  onProgress?: (progress: QueuedEvalProgress) => void;
}

export const QUEUED_EVAL_DEFAULTS = { window: 256, keepDays: 7 } as const;

/**
 * Runs an evaluation on workers: the same predictions file, resume and summary as `runEval`, but each image is a
 * BullMQ job (its bytes in Redis, its questions together) answered by any `vqa-llm worker` on the same queue:
 * workers need no copy of the dataset. The producer awaits `window` questions at once, appends each answer as it
 * arrives, and may die at any time: run again, it skips what the file has, and collects the jobs that finished
 * meanwhile instead of adding them again. A worker that dies mid-job loses nothing: once its lock expires another
 * worker answers the image's questions again, and each question is recorded (and counted) once.
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
  const imageTtlSeconds = options.imageTtlSeconds ?? settings.imageTtlSeconds ?? QUEUE_DEFAULTS.imageTtlSeconds;
  if (!Number.isInteger(imageTtlSeconds) || imageTtlSeconds < 1) throw new InvalidOptionError('invalid_value', `imageTtlSeconds must be a positive integer, got ${String(imageTtlSeconds)}.`);
  // runEval's own check, made here: runEval gets the limited questions, reordered.
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new InvalidOptionError('invalid_value', `limit must be a positive integer, got ${String(options.limit)}.`);
  }
  // bullmq loads here: processes that never get --queue never load it.
  const { Queue, QueueEvents } = await import('bullmq');
  const [connection, eventsConnection] = await Promise.all([openRedis(settings.connection, { role: 'queue' }), openRedis(settings.connection, { role: 'queue' })]);
  const queue = new Queue<QueueJobData, unknown>(settings.name, {
    connection,
    prefix: settings.prefix,
    // attempts 1: a question the pipeline refuses comes back as an answer with an error, and a dead worker's job is
    // retried by the stalled-job check, not by attempts.
    defaultJobOptions: { attempts: 1, removeOnComplete: { age: keepSeconds }, removeOnFail: { age: keepSeconds } },
  });
  const events = new QueueEvents(settings.name, { connection: eventsConnection, prefix: settings.prefix });
  const byWorker: Record<string, number> = {};
  let producer: ReturnType<typeof createImageJobProducer> | undefined;
  let released = 0;
  const releasing = new Set<Promise<unknown>>();
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const runKey = await runKeyFor(connection, settings, options.output, options.fresh === true);
    producer = createImageJobProducer({ queue, events, client: connection, location: settings, runKey, imageTtlSeconds });
    // Each image's questions one after the other, wherever the dataset lists them: a group (its job, its answers,
    // its bytes in Redis) is let go once all its questions are written, so with the window moving over whole
    // images at most `window` groups are held, where a shuffled dataset would hold nearly every image until the end.
    const questions = byImage(options.dataset.questions.slice(0, options.limit));
    const plan = await questionsToAsk(questions, options.output, options.fresh === true);
    const chain = createQueueChain({ producer, plan, onResult: (result) => (byWorker[result.worker] = (byWorker[result.worker] ?? 0) + 1) });
    const result = await runEval({
      dataset: { ...options.dataset, questions },
      chain,
      output: options.output,
      concurrency: window,
      fresh: options.fresh,
      signal: options.signal,
      onProgress: (progress) => {
        // runEval reports progress after each record is written, in the order the answers were taken.
        const written = progress.done - released;
        released = progress.done;
        if (written > 0) {
          const release = chain.release(written).catch(() => undefined);
          releasing.add(release);
          void release.then(() => releasing.delete(release));
        }
        options.onProgress?.({ ...progress, byWorker: { ...byWorker } });
      },
    });
    await chain.release(Number.MAX_SAFE_INTEGER);
    await deleteRunImages(connection, settings, runKey);
    return { ...result, byWorker };
  } finally {
    // Before the connection closes, on abort or error too: a removal cut short would leave a job and an image to
    // their age limits.
    await Promise.all(releasing);
    producer?.close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    eventsConnection.disconnect();
  }
}

/** The questions with each image's together, in the order of each image's first question (a stable sort). */
function byImage(questions: EvalQuestion[]): EvalQuestion[] {
  const byPath = new Map<string, EvalQuestion[]>();
  for (const question of questions) {
    const list = byPath.get(question.image);
    if (list) list.push(question);
    else byPath.set(question.image, [question]);
  }
  return [...byPath.values()].flat();
}

/**
 * The questions runEval will ask: those of the (limited) dataset without an answer in the predictions file yet.
 * Only a plan for grouping: a question outside it is still asked, on its own.
 */
async function questionsToAsk(questions: EvalQuestion[], output: string, fresh: boolean): Promise<EvalQuestion[]> {
  if (fresh) return questions;
  let answered: Set<string>;
  try {
    answered = new Set(parsePredictions(await readFile(output, 'utf8'), output).records.filter((record) => !record.error).map((record) => String(record.questionId)));
  } catch {
    // No file yet (or one runEval will refuse with its own message).
    return questions;
  }
  return questions.filter((question) => !answered.has(String(question.questionId)));
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
