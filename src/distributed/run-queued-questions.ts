import { randomBytes } from 'node:crypto';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { QueueJobError } from '../errors/queue-job-error.js';
import type { QuestionId } from '../eval/types.js';
import { toJobError, type EvalJobAnswer, type JobError, type QueueJobData } from './eval-job.js';
import { createImageJobProducer } from './image-job-producer.js';
import { parseQueueUrl, QUEUE_DEFAULTS } from './queue-settings.js';
import { openRedis } from './redis-client.js';

/** One question for the workers. */
export interface QueuedQuestion {
  /** Yours, given back with the answer (unique within the run). */
  id: QuestionId;
  /** A path this process can read (workers need not: the bytes travel through Redis), or the bytes. */
  image: string | Uint8Array;
  question: string;
}

/** One question's outcome: `answer`, or `error` when the pipeline refused it (a bad image) or the queue gave up. */
export interface QueuedAnswer {
  id: QuestionId;
  image: string | Uint8Array;
  question: string;
  /** The worker that answered (`host:pid` or its `--name`); absent when no worker did. */
  worker?: string;
  answer?: EvalJobAnswer;
  error?: JobError;
}

export interface RunQueuedQuestionsOptions {
  /** `redis://host:port/db[?queue=NAME&prefix=PREFIX&window=N&imageTtl=S]`, as the workers' `--queue`. */
  queue: string;
  /**
   * The questions, read as they are needed (an async iterable may be endless). Consecutive questions about the same
   * image (the same path, or the same bytes object) go to one worker as one job, which runs the image's vision work
   * once: list an image's questions together. A job is sent once it is full, once an item about another image
   * comes, or once the iterable has given nothing for `groupWaitMs`.
   */
  items: Iterable<QueuedQuestion> | AsyncIterable<QueuedQuestion>;
  /** Called once per question, in the order answers arrive; a returned promise is awaited before that job is removed. */
  onResult: (answer: QueuedAnswer) => void | Promise<void>;
  /**
   * Stops reading items (a read under way is given up) and waiting. The jobs this run added are removed, but for a
   * job a worker holds at that moment: it is answered for nobody and removed an hour after.
   */
  signal?: AbortSignal;
  /** Questions awaited at once. Default: the URL's `?window=`, else 256. */
  window?: number;
  /** Questions per job at most (an image with more gets several jobs). Default 64. */
  maxQuestionsPerJob?: number;
  /**
   * How long a job that is not full waits for another question about its image when the iterable gives nothing,
   * before it is sent as it is. Default 100 ms.
   */
  groupWaitMs?: number;
  /** The flag the URL came from, for messages. Default `queue`. */
  source?: string;
}

export interface RunQueuedQuestionsResult {
  answered: number;
  failed: number;
  /** Answers by worker name. */
  byWorker: Record<string, number>;
}

export const RUN_QUEUED_QUESTIONS_DEFAULTS = { window: 256, maxQuestionsPerJob: 64, groupWaitMs: 100, keepSeconds: 3_600 } as const;

interface Group {
  index: number;
  image: string | Uint8Array;
  items: QueuedQuestion[];
}

/**
 * Asks questions of `vqa-llm worker` processes through a BullMQ queue and hands each answer to `onResult` as it
 * arrives. Each image's bytes go to Redis once (workers need no shared files), and consecutive questions about one
 * image go to one worker as one job. A worker killed mid-job loses nothing: another one answers the job once its
 * lock expires, and each question reaches `onResult` once. Unlike `runQueuedEval` there is no resume: a batch
 * stopped through `signal` removes its waiting jobs and their images (one a worker holds then is answered for
 * nobody and removed an hour later); after a crash they stay, the images until their TTL.
 *
 * @example
 * ```ts
 * const lines = createWriteStream('answers.jsonl');
 * await runQueuedQuestions({
 *   queue: 'redis://10.0.0.5:6379/0',
 *   items: [{ id: 'a', image: 'photos/a.jpg', question: 'What is in the picture?' }],
 *   onResult: ({ id, answer, error }) => void lines.write(`${JSON.stringify({ id, answer: answer?.answer, error })}\n`),
 * });
 * ```
 */
export async function runQueuedQuestions(options: RunQueuedQuestionsOptions): Promise<RunQueuedQuestionsResult> {
  const flag = options.source ?? 'queue';
  const settings = parseQueueUrl(options.queue, flag);
  const window = options.window ?? settings.window ?? RUN_QUEUED_QUESTIONS_DEFAULTS.window;
  const maxPerJob = options.maxQuestionsPerJob ?? RUN_QUEUED_QUESTIONS_DEFAULTS.maxQuestionsPerJob;
  const groupWaitMs = options.groupWaitMs ?? RUN_QUEUED_QUESTIONS_DEFAULTS.groupWaitMs;
  for (const [name, value] of [['window', window], ['maxQuestionsPerJob', maxPerJob]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError('invalid_value', `${name} must be a positive integer, got ${String(value)}.`);
  }
  if (!Number.isFinite(groupWaitMs) || groupWaitMs < 0) throw new InvalidOptionError('invalid_value', `groupWaitMs must be a number of milliseconds (0 or more), got ${String(groupWaitMs)}.`);
  if (typeof options.onResult !== 'function') throw new InvalidOptionError('invalid_value', 'onResult must be a function.');
  options.signal?.throwIfAborted();
  const { Queue, QueueEvents } = await import('bullmq');
  const [connection, eventsConnection] = await Promise.all([openRedis(settings.connection, { role: 'queue' }), openRedis(settings.connection, { role: 'queue' })]);
  const queue = new Queue<QueueJobData, unknown>(settings.name, {
    connection,
    prefix: settings.prefix,
    // attempts 1: a refused question is an answer; a dead worker's job is retried by the stalled-job check.
    defaultJobOptions: { attempts: 1, removeOnComplete: { age: RUN_QUEUED_QUESTIONS_DEFAULTS.keepSeconds }, removeOnFail: { age: RUN_QUEUED_QUESTIONS_DEFAULTS.keepSeconds } },
  });
  const events = new QueueEvents(settings.name, { connection: eventsConnection, prefix: settings.prefix });
  const runKey = `b${randomBytes(6).toString('hex')}`;
  const result: RunQueuedQuestionsResult = { answered: 0, failed: 0, byWorker: {} };
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let producer: ReturnType<typeof createImageJobProducer> | undefined;
  // The groups added and not yet released: removed if the batch stops.
  const submitted = new Set<string>();
  const running = new Set<Promise<void>>();
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const imageTtlSeconds = settings.imageTtlSeconds ?? QUEUE_DEFAULTS.imageTtlSeconds;
    producer = createImageJobProducer({ queue, events, client: connection, location: settings, runKey, imageTtlSeconds });
    let inFlight = 0;
    let firstError: unknown;
    // Frees room in the window as answers come in; wakes the reader waiting for room.
    let roomFreed: () => void = () => undefined;

    const ask = async (group: Group): Promise<void> => {
      const key = `g${group.index}`;
      submitted.add(key);
      const questions = group.items.map((item) => ({ id: item.id, question: item.question }));
      let outcomes: QueuedAnswer[];
      try {
        const answered = await producer!.submit({ key, image: group.image, questions, signal: stop.signal });
        outcomes = group.items.map((item, index) => {
          const entry = answered.results[index]!;
          return { id: item.id, image: item.image, question: item.question, worker: entry.worker, ...(entry.error ? { error: entry.error } : { answer: entry.answer }) };
        });
      } catch (error) {
        if (stop.signal.aborted) return;
        // The image unreadable here, or the queue gave up on the job: each question fails, as a bad image does.
        const failure = toJobError(error);
        outcomes = group.items.map((item) => ({ id: item.id, image: item.image, question: item.question, error: failure }));
      }
      for (const outcome of outcomes) {
        if (outcome.error) result.failed += 1;
        else result.answered += 1;
        if (outcome.worker) result.byWorker[outcome.worker] = (result.byWorker[outcome.worker] ?? 0) + 1;
        await options.onResult(outcome);
      }
      await producer!.release(key);
      submitted.delete(key);
    };
    const launch = (group: Group): void => {
      inFlight += group.items.length;
      const task = ask(group)
        .catch((error: unknown) => {
          // onResult threw: stop, and report it.
          firstError ??= error;
          stop.abort(error);
        })
        .finally(() => {
          inFlight -= group.items.length;
          running.delete(task);
          roomFreed();
        });
      running.add(task);
    };
    const waitForRoom = async (): Promise<void> => {
      while (inFlight >= window && !stop.signal.aborted) await new Promise<void>((resolve) => (roomFreed = resolve));
    };

    let current: Group | undefined;
    let index = 0;
    const flush = async (): Promise<void> => {
      const group = current;
      current = undefined;
      if (!group) return;
      await waitForRoom();
      if (!stop.signal.aborted) launch(group);
    };
    // A stop wakes a reader waiting on an iterable that has gone quiet.
    const stopped = new Promise<'stopped'>((resolve) => {
      if (stop.signal.aborted) resolve('stopped');
      else stop.signal.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    const items = options.items as Partial<AsyncIterable<QueuedQuestion>> & Partial<Iterable<QueuedQuestion>>;
    const iterator: AsyncIterator<QueuedQuestion> | Iterator<QueuedQuestion> = items[Symbol.asyncIterator] ? items[Symbol.asyncIterator]!() : items[Symbol.iterator]!();
    let finished = false;
    try {
      while (!stop.signal.aborted) {
        const next = iterator.next();
        let step: IteratorResult<QueuedQuestion> | 'stopped' | 'idle';
        if (!(next instanceof Promise)) step = next;
        else if (!current) step = await Promise.race([next, stopped]);
        else {
          // A group that is not full waits a little for more questions about its image, then goes as it is.
          let timer: NodeJS.Timeout | undefined;
          const idle = new Promise<'idle'>((resolve) => (timer = setTimeout(() => resolve('idle'), groupWaitMs)));
          step = await Promise.race([next, stopped, idle]);
          clearTimeout(timer);
          if (step === 'idle') {
            await flush();
            step = await Promise.race([next, stopped]);
          }
        }
        if (step === 'stopped') break;
        if (step.done) {
          finished = true;
          break;
        }
        const item = step.value;
        checkItem(item);
        if (current && current.image === item.image) current.items.push(item);
        else {
          await flush();
          current = { index: index++, image: item.image, items: [item] };
        }
        // Full: nothing more can join it.
        if (current && current.items.length >= maxPerJob) await flush();
      }
    } finally {
      // Given up on (a stop, a bad item): a generator's clean-up runs; not awaited, as a read under way may never end.
      if (!finished) Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
    if (!stop.signal.aborted) await flush();
    while (running.size > 0) await Promise.race(running);
    if (firstError !== undefined) throw firstError;
    if (options.signal?.aborted) throw new QueueJobError('interrupted', 'Stopped asking: the jobs of this run were removed.', { cause: options.signal.reason });
    return result;
  } catch (error) {
    stop.abort(error);
    await Promise.allSettled(running);
    // No resume for a batch: what this run left in the queue would only be answered for nobody.
    await Promise.all([...submitted].map((key) => producer?.release(key)));
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    producer?.close();
    await events.close().catch(() => undefined);
    await queue.close().catch(() => undefined);
    connection.disconnect();
    eventsConnection.disconnect();
  }
}

function checkItem(item: QueuedQuestion): void {
  const valid =
    typeof item === 'object' &&
    item !== null &&
    (typeof item.id === 'string' || typeof item.id === 'number') &&
    typeof item.question === 'string' &&
    (typeof item.image === 'string' || item.image instanceof Uint8Array);
  if (!valid) throw new InvalidOptionError('invalid_value', `Each item needs an id (string or number), an image (path or bytes) and a question, got ${JSON.stringify(item)?.slice(0, 200)}.`);
}
