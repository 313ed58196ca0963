import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type ModelDownloadReason = 'http_error' | 'checksum_mismatch' | 'network';

/** Downloading a model failed; `reason` says why. */
export class ModelDownloadError extends VqaLlmError {
  static override isInstance(error: unknown): error is ModelDownloadError {
    return isVqaLlmError(error, 'ModelDownloadError');
  }

  readonly reason: ModelDownloadReason;

  constructor(reason: ModelDownloadReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'ModelDownloadError';
    this.reason = reason;
  }
}
