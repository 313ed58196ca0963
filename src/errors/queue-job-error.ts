import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

/**
 * `job_failed`: the queue gave up on a job (its workers died more often than the queue allows: see `maxStalledCount`);
 * `interrupted`: the producer stopped waiting (its signal aborted); the job stays queued and a rerun collects it.
 */
export type QueueJobReason = 'job_failed' | 'interrupted';

/** A question sent to workers through the queue came back without an answer; `reason` says why. */
export class QueueJobError extends VqaLlmError {
  static override isInstance(error: unknown): error is QueueJobError {
    return isVqaLlmError(error, 'QueueJobError');
  }

  readonly reason: QueueJobReason;

  constructor(reason: QueueJobReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'QueueJobError';
    this.reason = reason;
  }
}
