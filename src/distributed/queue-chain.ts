import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { VqaCallOptions, VqaInput, VqaResult } from '../../chains/types.js';
import type { EvalChain } from '../eval/run-eval.js';
import type { QuestionId } from '../eval/types.js';
import { fromJobError, type EvalJobResult, type JobQuestion } from './eval-job.js';
import type { ImageJobProducer } from './image-job-producer.js';

export interface QueueChainOptions {
  producer: ImageJobProducer;
  /**
   * The questions still to answer, as the evaluation will ask them: an image's questions go to the queue together,
   * as one job, when the first of them is asked. A question outside the plan goes alone.
   */
  plan: readonly { questionId: QuestionId; question: string; image: string }[];
  /** Each answer as it arrives, with the worker that made it. */
  onResult?: (result: EvalJobResult) => void;
}

/** `EvalChain` that sends questions to workers, plus what the producer needs to shut it down. */
export interface QueueChain extends EvalChain {
  /**
   * Marks the oldest `count` answers taken as written: an image's job (and its bytes in Redis) is removed once all
   * its answers are, so that a producer that dies in between finds them again instead of asking again.
   */
  release(count: number): Promise<void>;
}

interface PendingGroup {
  key: string;
  questions: JobQuestion[];
  /** Answers not yet written; at 0 the group is released. */
  unwritten: number;
  /** Answers not yet taken; at 0 the chain lets go of them (an evaluation holds one group's answers, not all). */
  untaken: number;
  answered?: Promise<Map<string, EvalJobResult>>;
}

/**
 * An evaluation chain whose `invoke` answers from image jobs: the first question asked about an image sends the
 * image and all its planned questions as one job (one worker runs the image's vision work once), and each of those
 * questions' `invoke` resolves with its own answer from that job. The job key is the image's path, so a producer
 * that died and starts again finds the job it had added, done or not, rather than adding it twice.
 *
 * @example
 * const chain = createQueueChain({ producer, plan: dataset.questions });
 * await runEval({ dataset, chain, output: 'predictions.jsonl', concurrency: 256 });
 */
export function createQueueChain(options: QueueChainOptions): QueueChain {
  const { producer } = options;
  // Per image path, its planned questions; a group is formed on first use.
  const planned = new Map<string, JobQuestion[]>();
  for (const { questionId, question, image } of options.plan) {
    const list = planned.get(image) ?? [];
    list.push({ id: questionId, question });
    planned.set(image, list);
  }
  const groups = new Map<string, PendingGroup>();
  // Per question id, its group (for questions of a group already formed).
  const groupOf = new Map<string, PendingGroup>();
  // The groups of answers taken, in the order they were handed to the caller (the order runEval writes them).
  const taken: PendingGroup[] = [];

  // Once each of a group's questions has had its answer, nothing needs the group but release.
  const take = (group: PendingGroup, questionId: QuestionId): void => {
    taken.push(group);
    groupOf.delete(String(questionId));
    group.untaken -= 1;
    if (group.untaken === 0) {
      groups.delete(group.key);
      group.answered = undefined;
    }
  };
  const groupFor = (image: string, questionId: QuestionId, question: string): PendingGroup => {
    const existing = groupOf.get(String(questionId));
    if (existing) return existing;
    const imageKey = `i${createHash('sha256').update(resolve(image)).digest('hex').slice(0, 24)}`;
    const list = planned.get(image);
    const inPlan = list?.some((entry) => String(entry.id) === String(questionId)) && !groups.has(imageKey);
    const group: PendingGroup = inPlan
      ? { key: imageKey, questions: list!, unwritten: list!.length, untaken: list!.length }
      : { key: `${imageKey}.q${createHash('sha256').update(String(questionId)).digest('hex').slice(0, 16)}`, questions: [{ id: questionId, question }], unwritten: 1, untaken: 1 };
    groups.set(group.key, group);
    for (const entry of group.questions) groupOf.set(String(entry.id), group);
    return group;
  };

  return {
    async invoke(input: VqaInput, config?: Partial<VqaCallOptions>): Promise<VqaResult> {
      config?.signal?.throwIfAborted();
      const image = input.image;
      if (typeof image !== 'string') throw new TypeError('Queued evaluation reads images from paths; input.image must be a string.');
      const questionId = (config?.metadata?.questionId as QuestionId | undefined) ?? fallbackQuestionId(image, input.question);
      const group = groupFor(image, questionId, input.question);
      group.answered ??= producer.submit({ key: group.key, image, questions: group.questions }).then((result) => new Map(result.results.map(({ id, ...rest }) => [String(id), rest as EvalJobResult])));
      // The job is shared by the group's questions: this one stops waiting on its own abort, the job goes on.
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(config!.signal!.reason);
        config?.signal?.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      let answers: Map<string, EvalJobResult>;
      try {
        answers = await Promise.race([group.answered, aborted]);
        config?.signal?.removeEventListener('abort', onAbort!);
      } catch (error) {
        config?.signal?.removeEventListener('abort', onAbort!);
        // Aborted: runEval writes no record, and the group's job stays for a rerun. Otherwise (the image unreadable
        // here, the queue gave up on the job) runEval records a failed question, as for an answer.
        if (!config?.signal?.aborted) take(group, questionId);
        throw error;
      }
      const result = answers.get(String(questionId))!;
      take(group, questionId);
      options.onResult?.(result);
      if (result.error) throw fromJobError(result.error);
      return result.answer as VqaResult;
    },
    async release(count) {
      const done: PendingGroup[] = [];
      for (const group of taken.splice(0, count)) {
        group.unwritten -= 1;
        if (group.unwritten === 0) done.push(group);
      }
      await Promise.all(done.map((group) => producer.release(group.key)));
    },
  };
}

/** Without a question id (a caller other than runEval), the image and the question name the job. */
function fallbackQuestionId(image: string, question: string): string {
  return createHash('sha256').update(`${image}\n${question}`).digest('hex').slice(0, 24);
}
