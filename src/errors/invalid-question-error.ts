import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type InvalidQuestionReason = 'empty' | 'too_long' | 'control_characters';

/** The question cannot be used; `reason` says why. */
export class InvalidQuestionError extends VqaLlmError {
  static override isInstance(error: unknown): error is InvalidQuestionError {
    return isVqaLlmError(error, 'InvalidQuestionError');
  }

  readonly reason: InvalidQuestionReason;

  constructor(reason: InvalidQuestionReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'InvalidQuestionError';
    this.reason = reason;
  }
}
