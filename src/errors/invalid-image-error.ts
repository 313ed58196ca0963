import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type InvalidImageReason = 'empty' | 'not_found' | 'unsupported_format' | 'truncated' | 'too_many_bytes' | 'too_many_pixels' | 'too_small' | 'aspect_ratio' | 'too_many_channels' | 'fetch_failed' | 'url_refused';

/** The image cannot be used; `reason` says why. */
export class InvalidImageError extends VqaLlmError {
  static override isInstance(error: unknown): error is InvalidImageError {
    return isVqaLlmError(error, 'InvalidImageError');
  }

  readonly reason: InvalidImageReason;

  constructor(reason: InvalidImageReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'InvalidImageError';
    this.reason = reason;
  }
}
