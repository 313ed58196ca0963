// What travels through the queue. Plain JSON only: BullMQ stores job data and return values as JSON.
import type { VqaResult } from '../../chains/types.js';
import type { QuestionId } from '../eval/types.js';

/** One question to answer about a job's image. */
export interface JobQuestion {
  /** The question's id: a dataset's question id, or a batch item's id. */
  id: QuestionId;
  question: string;
}

/**
 * Where a job's image is: its bytes sit in Redis under the queue's prefix (see `imageStoreKey`), put there by the
 * producer, so workers need no shared dataset path.
 */
export interface JobImageRef {
  /** sha256 (hex) of the encoded bytes: the worker checks the bytes it reads against it. */
  sha256: string;
  /** Byte length, checked too (a truncated value fails before hashing). */
  size: number;
  /** The run that put the bytes there (the producer deletes them once the run no longer needs them). */
  run: string;
  /** The image's path or name on the producer, for messages only. */
  name: string;
}

/**
 * One image and the questions about it: one worker runs the image's vision work once and answers all of them
 * (VQAv2 has about 3 to 5 questions per image).
 */
export interface ImageJobData {
  kind: 'image-questions';
  image: JobImageRef;
  questions: JobQuestion[];
  /**
   * Names this attempt at the job (a retry reuses the job id); the worker echoes it in its result, so that the
   * producer never takes an earlier attempt's answer for this one's. Absent from jobs of producers before attempts.
   */
  attempt?: string;
}

/**
 * One question whose image is a path (producers before image jobs): still answered, so that a queue filled by an
 * older producer drains; every worker must then see the dataset at that path.
 */
export interface EvalJobData {
  questionId: QuestionId;
  question: string;
  image: string;
}

/** What a job may carry. */
export type QueueJobData = ImageJobData | EvalJobData;

/** The part of a chain result that a predictions record keeps (see `toPredictionRecord`). */
export type EvalJobAnswer = Pick<VqaResult, 'answer' | 'shortAnswer' | 'question' | 'caption' | 'candidates' | 'source' | 'fallbackReason' | 'cached' | 'timings' | 'models'>;

/** An error as it travels in JSON: the fields a predictions record keeps. */
export interface JobError {
  name: string;
  code?: string;
  message: string;
}

/**
 * A worker's outcome for one question. A question the pipeline refuses (a bad image, say) is an answer too
 * (`error`), recorded as a single-process run records it; only a dead worker makes the job run again.
 */
export type EvalJobResult = { worker: string; answer: EvalJobAnswer; error?: undefined } | { worker: string; error: JobError; answer?: undefined };

/** An image job's outcome: one result per question, in the job's order. */
export interface ImageJobResult {
  worker: string;
  results: (EvalJobResult & { id: QuestionId })[];
  /**
   * Set when the image's bytes were missing from Redis (expired) or did not match their hash: every question then
   * has this error. The producer puts the bytes back and asks once more before recording the failure.
   */
  imageUnavailable?: JobError;
  /** The job's `attempt`, echoed. */
  attempt?: string;
}

export function isImageJobData(data: unknown): data is ImageJobData {
  return typeof data === 'object' && data !== null && (data as ImageJobData).kind === 'image-questions' && Array.isArray((data as ImageJobData).questions);
}

export function isImageJobResult(value: unknown): value is ImageJobResult {
  return typeof value === 'object' && value !== null && typeof (value as ImageJobResult).worker === 'string' && Array.isArray((value as ImageJobResult).results);
}

export function toJobAnswer(result: VqaResult): EvalJobAnswer {
  const { answer, shortAnswer, question, caption, candidates, source, fallbackReason, cached, timings, models } = result;
  return { answer, shortAnswer, question, caption, candidates, source, ...(fallbackReason ? { fallbackReason } : {}), cached, timings, models };
}

/** An error's fields for JSON (a thrown value of any kind). */
export function toJobError(error: unknown): JobError {
  const failure = error as { name?: string; code?: unknown; message?: string };
  return { name: failure?.name ?? 'Error', ...(typeof failure?.code === 'string' ? { code: failure.code } : {}), message: failure?.message ?? String(error) };
}

/** The error a job's error result stands for, thrown where a caller expects a rejection. */
export function fromJobError(error: JobError): Error {
  return Object.assign(new Error(error.message), { name: error.name, ...(error.code ? { code: error.code } : {}) });
}

/** A job id per run and key: adding it again (a resumed producer) finds the job instead of duplicating it. */
export function queueJobId(runKey: string, key: string): string {
  // BullMQ refuses ids with ':' and plain integers; encodeURIComponent removes the one, the run key the other.
  return `${runKey}.${encodeURIComponent(key)}`;
}

/** The id of a one-question job (older producers): kept for the ids already in queues. */
export function evalJobId(runKey: string, questionId: QuestionId): string {
  return `${runKey}.${typeof questionId}.${encodeURIComponent(String(questionId))}`;
}
