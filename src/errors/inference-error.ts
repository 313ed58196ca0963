import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type InferenceReason = 'session_failed' | 'bad_output' | 'worker_failed';

/** Model inference failed; `reason` says why. */
export class InferenceError extends VqaLlmError {
  static override isInstance(error: unknown): error is InferenceError {
    return isVqaLlmError(error, 'InferenceError');
  }

  readonly reason: InferenceReason;

  constructor(reason: InferenceReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'InferenceError';
    this.reason = reason;
  }
}
