import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type ModelIntegrityReason = 'missing_file' | 'checksum_mismatch' | 'size_mismatch' | 'bad_manifest' | 'wrong_kind';

/** The model folder is not usable; `reason` says why. */
export class ModelIntegrityError extends VqaLlmError {
  static override isInstance(error: unknown): error is ModelIntegrityError {
    return isVqaLlmError(error, 'ModelIntegrityError');
  }

  readonly reason: ModelIntegrityReason;

  constructor(reason: ModelIntegrityReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'ModelIntegrityError';
    this.reason = reason;
  }
}
