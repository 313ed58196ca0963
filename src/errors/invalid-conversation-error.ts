import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

/**
 * - `missing_image`: no user message holds an image.
 * - `too_many_images`: the messages hold more than one different image; the pipeline answers about one.
 * - `missing_question`: the last message is not a user message with text.
 * - `misplaced_image`: an image outside a user message.
 * - `unsupported_content`: a message or part the pipeline cannot read (a tool message, an audio block...).
 * - `unsupported_schema`: a JSON schema for the answer that the result's fields cannot fill.
 */
export type InvalidConversationReason = 'missing_image' | 'too_many_images' | 'missing_question' | 'misplaced_image' | 'unsupported_content' | 'unsupported_schema';

export interface InvalidConversationErrorOptions extends VqaLlmErrorOptions {
  /**
   * Where in the input the fault sits: a request path for the server (`messages[1].content[0].image_url.url`), which
   * it sends as OpenAI's `param`; a message and part for the in-process adapters (`message 2 (user), part 1`).
   */
  param?: string;
}

/**
 * The messages cannot be reduced to one image and one question, or ask for JSON the result cannot fill; `reason` says
 * why, `param` where. The in-process adapters throw it as it is; the server answers it with a 400.
 *
 * @example
 * try {
 *   await model.invoke([new HumanMessage('What is this?')]);
 * } catch (error) {
 *   if (InvalidConversationError.isInstance(error) && error.reason === 'missing_image') console.error(error.message);
 * }
 */
export class InvalidConversationError extends VqaLlmError {
  static override isInstance(error: unknown): error is InvalidConversationError {
    return isVqaLlmError(error, 'InvalidConversationError');
  }

  readonly reason: InvalidConversationReason;
  readonly param?: string;

  constructor(reason: InvalidConversationReason, message: string, options: InvalidConversationErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'InvalidConversationError';
    this.reason = reason;
    this.param = options.param;
  }
}
