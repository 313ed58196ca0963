import { createHash } from 'node:crypto';
import type { Queue, QueueEvents } from 'bullmq';
import type { VqaCallOptions, VqaInput, VqaResult } from '../../chains/types.js';
import { QueueJobError } from '../errors/queue-job-error.js';
import type { EvalChain } from '../eval/run-eval.js';
import type { QuestionId } from '../eval/types.js';
import { evalJobId, type EvalJobData, type EvalJobResult } from './eval-job.js';

export interface QueueChainOptions {
  queue: Queue<EvalJobData, EvalJobResult>;
  /** Must be listening (`waitUntilReady`) before the first `invoke`. */
  events: QueueEvents;
  /** Names this evaluation run in job ids (see `evalJobId`). */
  runKey: string;
  /** Each answer as it arrives, with the worker that made it. */
  onResult?: (result: EvalJobResult) => void;
  /** How often jobs still awaited are checked directly, in case a completion event was missed. Default 5000 ms. */
  sweepMs?: number;
  /**
   * Send a question only once the previous question about the same image is answered. Default true: the image's
   * work is then in the workers' shared cache (`--cache`) when its follow-ups run, instead of two workers computing
   * it at the same moment; other images' questions keep every worker busy meanwhile.
   */
  oneImageAtATime?: boolean;
}

/** `EvalChain` that sends questions to workers, plus what the producer needs to shut it down. */
export interface QueueChain extends EvalChain {
  /**
   * Removes the jobs of the oldest `count` answers taken: call it once their records are written, so that a producer
   * that dies in between finds the answers again instead of asking the questions again.
   */
  release(count: number): Promise<void>;
  /** Stops the sweep; jobs still awaited stay queued. */
  close(): void;
}

interface Waiter {
  resolve: (result: EvalJobResult) => void;
  reject: (error: unknown) => void;
}

/**
 * An evaluation chain whose `invoke` puts the question in a BullMQ queue and resolves with the answer a worker
 * (`vqa-llm worker`) made. The job id is the run key and the question id (from `config.metadata.questionId`,
 * which runEval sets), so a producer that died and starts again finds the jobs it had added, done or not, rather
 * than adding them twice; the producer removes a job (`release`) once its answer is written.
 *
 * @example
 * const chain = createQueueChain({ queue, events, runKey });
 * await runEval({ dataset, chain, output: 'predictions.jsonl', concurrency: 256 });
 */
export function createQueueChain(options: QueueChainOptions): QueueChain {
  const { queue, events, runKey } = options;
  const waiters = new Map<string, Waiter>();
  // Jobs whose answers were taken, in the order they were handed to the caller (the order runEval writes them).
  const taken: string[] = [];
  // Per image, the last question sent or waiting to be: the next one about it waits for it.
  const imageTurns = new Map<string, Promise<unknown>>();

  const settle = (jobId: string, outcome: { result?: EvalJobResult; failedReason?: string }): void => {
    const waiter = waiters.get(jobId);
    if (!waiter) return;
    waiters.delete(jobId);
    taken.push(jobId);
    if (outcome.result) {
      options.onResult?.(outcome.result);
      waiter.resolve(outcome.result);
    } else {
      waiter.reject(new QueueJobError('job_failed', `The queue gave up on job ${jobId}: ${outcome.failedReason ?? 'no reason given'}.`, { hint: 'Run the same command again to retry it.' }));
    }
  };
  const onCompleted = ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }): void => {
    if (isJobResult(returnvalue)) settle(jobId, { result: returnvalue });
  };
  const onFailed = ({ jobId, failedReason }: { jobId: string; failedReason: string }): void => settle(jobId, { failedReason });
  events.on('completed', onCompleted as never);
  events.on('failed', onFailed as never);

  // Whether the job is already done: a resumed producer's jobs may have finished while it was away.
  const check = async (jobId: string): Promise<string> => {
    const job = await queue.getJob(jobId);
    if (!job) return 'unknown';
    const state = await job.getState();
    if (state === 'completed' && isJobResult(job.returnvalue)) settle(jobId, { result: job.returnvalue });
    return state;
  };
  const sweep = setInterval(() => {
    for (const jobId of waiters.keys()) {
      check(jobId).then(
        (state) => {
          if (state === 'failed') settle(jobId, { failedReason: 'failed' });
        },
        () => undefined,
      );
    }
  }, options.sweepMs ?? 5_000);
  sweep.unref();

  return {
    async invoke(input: VqaInput, config?: Partial<VqaCallOptions>): Promise<VqaResult> {
      config?.signal?.throwIfAborted();
      const image = input.image;
      if (typeof image !== 'string') throw new TypeError('Queued evaluation sends image paths; input.image must be a string.');
      const questionId = (config?.metadata?.questionId as QuestionId | undefined) ?? fallbackQuestionId(image, input.question);
      const jobId = evalJobId(runKey, questionId);
      const data: EvalJobData = { questionId, question: input.question, image };
      const answered = new Promise<EvalJobResult>((resolve, reject) => waiters.set(jobId, { resolve, reject }));
      // Rejected at once on abort; the job stays queued and a rerun collects it.
      const aborted = new Promise<never>((_, reject) => {
        config?.signal?.addEventListener('abort', () => reject(new QueueJobError('interrupted', `Stopped waiting for job ${jobId}.`)), { once: true });
      });
      const previous = options.oneImageAtATime === false ? undefined : imageTurns.get(image);
      const work = (async () => {
        if (previous) await previous;
        await queue.add('question', data, { jobId });
        const state = await check(jobId);
        if (state === 'failed') {
          // Given up on in an earlier run: this run tries it again.
          await queue.remove(jobId);
          await queue.add('question', data, { jobId });
        }
        return answered;
      })();
      const turn = work.catch(() => undefined);
      if (options.oneImageAtATime !== false) imageTurns.set(image, turn);
      void turn.then(() => {
        if (imageTurns.get(image) === turn) imageTurns.delete(image);
      });
      try {
        const result = await Promise.race([work, aborted]);
        if (result.error) throw Object.assign(new Error(result.error.message), { name: result.error.name, ...(result.error.code ? { code: result.error.code } : {}) });
        return result.answer as VqaResult;
      } finally {
        waiters.delete(jobId);
      }
    },
    async release(count) {
      // A failure to remove only leaves the job to removeOnComplete's age limit.
      await Promise.all(taken.splice(0, count).map((jobId) => queue.remove(jobId).catch(() => undefined)));
    },
    close() {
      clearInterval(sweep);
      events.off('completed', onCompleted as never);
      events.off('failed', onFailed as never);
    },
  };
}

function isJobResult(value: unknown): value is EvalJobResult {
  return typeof value === 'object' && value !== null && typeof (value as EvalJobResult).worker === 'string' && ((value as EvalJobResult).answer !== undefined || (value as EvalJobResult).error !== undefined);
}

/** Without a question id (a caller other than runEval), the image and the question name the job. */
function fallbackQuestionId(image: string, question: string): string {
  return createHash('sha256').update(`${image}\n${question}`).digest('hex').slice(0, 24);
}
