import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

/** `missing_repo`, `missing_revision`, `missing_file`: what the hub answered 404 for. */
export type ModelNotFoundReason = 'missing_folder' | 'unknown_source' | 'missing_repo' | 'missing_revision' | 'missing_file';

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
