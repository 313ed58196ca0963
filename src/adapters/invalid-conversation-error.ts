import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from '../errors/index.js';

/**
 * - `missing_image`: no user message holds an image.
 * - `too_many_images`: the messages hold more than one different image; the pipeline answers about one.
 * - `missing_question`: the last message is not a user message with text.
 * - `misplaced_image`: an image outside a user message.
 * - `unsupported_content`: a message or part the pipeline cannot read (a tool message, an audio block...).
 */
export type InvalidConversationReason = 'missing_image' | 'too_many_images' | 'missing_question' | 'misplaced_image' | 'unsupported_content';

/** The messages given to an in-process adapter cannot be reduced to one image and one question; `reason` says why. */
export class InvalidConversationError extends VqaLlmError {
  static override isInstance(error: unknown): error is InvalidConversationError {
    return isVqaLlmError(error, 'InvalidConversationError');
  }

  readonly reason: InvalidConversationReason;

  constructor(reason: InvalidConversationReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'InvalidConversationError';
    this.reason = reason;
  }
}
