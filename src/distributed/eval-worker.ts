import { hostname } from 'node:os';
import type { Job } from 'bullmq';
import pLimit from 'p-limit';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import type { EvalChain } from '../eval/run-eval.js';
import type { QuestionId } from '../eval/types.js';
import { isImageJobData, isImageJobResult, toJobAnswer, toJobError, type EvalJobResult, type ImageJobData, type ImageJobResult, type QueueJobData } from './eval-job.js';
import { fetchImage } from './image-store.js';
import { parseQueueUrl } from './queue-settings.js';
import { openRedis } from './redis-client.js';
import { EVAL_WORKER_DEFAULTS } from './worker-defaults.js';

/**
 * Per question. `started`: the worker began answering it; `finished`: its job's answers are in the queue
 * (acknowledged by BullMQ, so each question finishes once over all workers, although a job whose lock expired may
 * have been started twice); `abandoned`: this worker's work on it ended without an answer the producer keeps (see
 * `reason`), and the question is asked again elsewhere or by the producer. An image job gives one `started` per
 * question as each begins and then, per question it started, one `finished` or one `abandoned`.
 */
export interface EvalWorkerEvent {
  type: 'started' | 'finished' | 'abandoned';
  jobId: string;
  questionId: QuestionId;
  worker: string;
  /** `finished` only: whether the pipeline refused the question (recorded as a failed question). */
  failed?: boolean;
  /**
   * `abandoned` only. `image_unavailable`: the image's bytes were gone or damaged, the producer puts them back and
   * asks once more (a second failure it records itself); `not_acknowledged`: the queue refused the answer (the
   * job's lock was lost, so another worker has it) or the job failed or the worker was force-closed.
   */
  reason?: 'image_unavailable' | 'not_acknowledged';
  /** Image jobs: the image's sha256, so that logs show which questions shared one image's work. */
  image?: string;
}

export interface EvalWorkerOptions {
  /** `redis://host:port/db[?queue=NAME&prefix=PREFIX]`, as the producer's. */
  queue: string;
  /** The chain that answers: models are loaded once, before the worker takes its first job. */
  chain: EvalChain;
  /**
   * Questions answered at once, over all jobs in hand. Default 1 (the vision models already use every core for one
   * question); 2 overlaps one question's LLM call with another's vision work.
   */
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
  /** Questions answered (acknowledged by the queue) so far, over all jobs. */
  readonly processed: number;
  /**
   * Takes no more jobs and waits for those in hand to finish (a drain; SIGTERM in `vqa-llm worker`). With
   * `timeoutMs`, a drain still going then (Redis unreachable: the answers cannot be acknowledged) is cut short: the
   * connections are dropped and the jobs in hand go to other workers once their locks expire.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

export { EVAL_WORKER_DEFAULTS };

/**
 * Answers questions from a BullMQ queue (evaluation runs and `runQueuedQuestions` batches alike) with a chain whose
 * models are already loaded. An image job's bytes come from Redis, checked against their sha256; its first
 * question runs alone (it fills the models' caches with the image's caption and embeddings), the others then
 * reuse that work. An image that is gone or damaged answers every question with the error, as a single-process run
 * answers a bad image. Jobs of older producers (one question, an image path) are still answered.
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
  const [connection, images] = await Promise.all([openRedis(settings.connection, { role: 'queue' }), openRedis(settings.connection, { role: 'queue' })]);
  let processed = 0;
  // One limit over every job in hand: `concurrency` questions at once, however they are grouped.
  const limit = pLimit(concurrency);
  const answer = async (image: string | Uint8Array, question: string): Promise<EvalJobResult> => {
    try {
      return { worker: name, answer: toJobAnswer(await options.chain.invoke({ image, question })) };
    } catch (error) {
      return { worker: name, error: toJobError(error) };
    }
  };
  // Per job in hand, the questions it started: those are abandoned if the queue never acknowledges the job. Each
  // entry goes when its job's processing ends.
  const startedOf = new Map<Job, QuestionId[]>();
  const markStarted = (job: Job, questionId: QuestionId, image?: string): void => {
    startedOf.set(job, [...(startedOf.get(job) ?? []), questionId]);
    options.onEvent?.({ type: 'started', jobId: job.id ?? '', questionId, worker: name, ...(image ? { image } : {}) });
  };
  const abandon = (job: Job, reason: NonNullable<EvalWorkerEvent['reason']>): void => {
    const image = isImageJobData(job.data) ? job.data.image.sha256 : undefined;
    for (const questionId of startedOf.get(job) ?? []) options.onEvent?.({ type: 'abandoned', jobId: job.id ?? '', questionId, worker: name, reason, ...(image ? { image } : {}) });
    startedOf.delete(job);
  };
  const answerImageJob = async (job: Job<QueueJobData>, data: ImageJobData): Promise<ImageJobResult> => {
    const echo = data.attempt === undefined ? {} : { attempt: data.attempt };
    if (data.questions.length === 0) return { worker: name, results: [], ...echo };
    const started = (questionId: QuestionId): void => markStarted(job, questionId, data.image.sha256);
    let bytes: Buffer;
    try {
      bytes = await fetchImage(images, settings, data.image);
    } catch (error) {
      const failure = toJobError(error);
      for (const question of data.questions) started(question.id);
      return { worker: name, imageUnavailable: failure, results: data.questions.map((question) => ({ id: question.id, worker: name, error: failure })), ...echo };
    }
    const one = (index: number): Promise<EvalJobResult & { id: QuestionId }> =>
      limit(async () => {
        const question = data.questions[index]!;
        started(question.id);
        return { id: question.id, ...(await answer(bytes, question.question)) };
      });
    // The first question alone: concurrent ones would each compute the image's work before any is cached.
    const first = await one(0);
    const rest = await Promise.all(data.questions.slice(1).map((_, index) => one(index + 1)));
    return { worker: name, results: [first, ...rest], ...echo };
  };
  // Jobs whose outcome the queue took ('completed' and 'failed' fire only then).
  const acknowledged = new WeakSet<Job>();
  /**
   * BullMQ's worker, told when a job's processing ends without the queue taking its outcome: a completion refused
   * for a lost lock, or a worker closing, fires no event, and the job's questions would stay counted as in hand.
   */
  class AcknowledgingWorker extends Worker<QueueJobData, ImageJobResult | EvalJobResult> {
    override async processJob(job: Job<QueueJobData, ImageJobResult | EvalJobResult>, token: string, fetchNextCallback?: () => boolean): Promise<void | Job<QueueJobData, ImageJobResult | EvalJobResult>> {
      try {
        return await super.processJob(job, token, fetchNextCallback);
      } finally {
        if (!acknowledged.has(job)) abandon(job, 'not_acknowledged');
      }
    }
  }
  const worker = new AcknowledgingWorker(
    settings.name,
    async (job) => {
      const data = job.data;
      if (isImageJobData(data)) return answerImageJob(job, data);
      return limit(() => {
        markStarted(job, data.questionId);
        return answer(data.image, data.question);
      });
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
    acknowledged.add(job);
    const jobId = job.id ?? '';
    if (isImageJobResult(result) && isImageJobData(job.data)) {
      // Nothing answered: the producer asks again with the bytes put back, so these questions are not finished.
      if (result.imageUnavailable) {
        abandon(job, 'image_unavailable');
        return;
      }
      startedOf.delete(job);
      for (const entry of result.results) {
        processed += 1;
        options.onEvent?.({ type: 'finished', jobId, questionId: entry.id, worker: name, failed: entry.error !== undefined, image: job.data.image.sha256 });
      }
      return;
    }
    startedOf.delete(job);
    processed += 1;
    if (!isImageJobData(job.data)) options.onEvent?.({ type: 'finished', jobId, questionId: job.data.questionId, worker: name, failed: (result as EvalJobResult).error !== undefined });
  });
  // The processor does not throw (a refused question is an answer), but a job can still fail (a stalled job given up
  // on): its questions are not finished here.
  worker.on('failed', (job) => {
    if (!job) return;
    acknowledged.add(job);
    abandon(job, 'not_acknowledged');
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
    async close(closeOptions) {
      const drained = worker.close();
      const timeoutMs = closeOptions?.timeoutMs;
      if (timeoutMs === undefined) await drained;
      else {
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), timeoutMs)));
        const outcome = await Promise.race([drained.then(() => 'drained' as const), expired]);
        clearTimeout(timer);
        if (outcome === 'expired') {
          // close(true) cannot overtake a drain already under way: drop the connections under it instead, which
          // fails the commands it waits on (and stops their reconnecting), and stop waiting for it. Not awaited:
          // a connection dropped while it reconnects never says it has ended.
          drained.catch(() => undefined);
          worker.disconnect().catch(() => undefined);
          // Their processing never ends now (its acknowledgement waits on a dropped connection): said here.
          for (const job of [...startedOf.keys()]) abandon(job, 'not_acknowledged');
        }
      }
      connection.disconnect();
      images.disconnect();
    },
  };
}
