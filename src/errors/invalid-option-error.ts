import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type InvalidOptionReason = 'invalid_value';

/** An option has a bad value; `reason` says why. */
export class InvalidOptionError extends VqaLlmError {
  static override isInstance(error: unknown): error is InvalidOptionError {
    return isVqaLlmError(error, 'InvalidOptionError');
  }

  readonly reason: InvalidOptionReason;

  constructor(reason: InvalidOptionReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'InvalidOptionError';
    this.reason = reason;
  }
}
