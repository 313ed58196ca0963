// What travels through the evaluation queue. Plain JSON only: BullMQ stores job data and return values as JSON.
import type { VqaResult } from '../../chains/types.js';
import type { QuestionId } from '../eval/types.js';

/** One question for a worker. */
export interface EvalJobData {
  questionId: QuestionId;
  question: string;
  /** The image file's path: every worker must see the dataset at the same path (a shared volume, or a copy). */
  image: string;
}

/** The part of a chain result that a predictions record keeps (see `toPredictionRecord`). */
export type EvalJobAnswer = Pick<VqaResult, 'answer' | 'shortAnswer' | 'question' | 'caption' | 'candidates' | 'source' | 'fallbackReason' | 'cached' | 'timings' | 'models'>;

/**
 * A worker's outcome. A question the pipeline refuses (a bad image, say) is an answer too (`error`), recorded as
 * a single-process run records it; only a dead worker makes the job run again.
 */
export type EvalJobResult =
  | { worker: string; answer: EvalJobAnswer; error?: undefined }
  | { worker: string; error: { name: string; code?: string; message: string }; answer?: undefined };

export function toJobAnswer(result: VqaResult): EvalJobAnswer {
  const { answer, shortAnswer, question, caption, candidates, source, fallbackReason, cached, timings, models } = result;
  return { answer, shortAnswer, question, caption, candidates, source, ...(fallbackReason ? { fallbackReason } : {}), cached, timings, models };
}

/** A job id per run and question: adding it again (a resumed producer) finds the job instead of duplicating it. */
export function evalJobId(runKey: string, questionId: QuestionId): string {
  // BullMQ refuses ids with ':' and plain integers; encodeURIComponent removes the one, the run key the other.
  return `${runKey}.${typeof questionId}.${encodeURIComponent(String(questionId))}`;
}
