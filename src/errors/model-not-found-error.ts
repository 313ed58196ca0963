import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type ModelNotFoundReason = 'missing_folder' | 'unknown_source';

/** No model folder was found; `reason` says why. */
export class ModelNotFoundError extends VqaLlmError {
  static override isInstance(error: unknown): error is ModelNotFoundError {
    return isVqaLlmError(error, 'ModelNotFoundError');
  }

  readonly reason: ModelNotFoundReason;

  constructor(reason: ModelNotFoundReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'ModelNotFoundError';
    this.reason = reason;
  }
}
