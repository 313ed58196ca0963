import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

/**
 * Why the embedded LLM (node-llama-cpp) could not load or answer:
 * - `runtime_missing`: the optional dependency node-llama-cpp, or its prebuilt binary for this platform, is absent;
 * - `model_not_found`: no GGUF file at the path (or the default model has not been fetched);
 * - `invalid_gguf`: the file is not a GGUF file (wrong magic, unreadable header);
 * - `model_corrupt`: the header reads but llama.cpp cannot load the weights (truncated or damaged file);
 * - `unsupported_architecture`: a GGUF of an architecture this llama.cpp build does not know;
 * - `no_chat_template`: the GGUF has no chat template (a base model, not an instruct model);
 * - `context_overflow`: the prompt does not fit the context, even without the conversation's earlier turns;
 * - `busy`: every sequence is answering and the wait queue is full;
 * - `disposed`: the model was disposed.
 */
export type LocalLlmReason =
  | 'runtime_missing'
  | 'model_not_found'
  | 'invalid_gguf'
  | 'model_corrupt'
  | 'unsupported_architecture'
  | 'no_chat_template'
  | 'context_overflow'
  | 'busy'
  | 'disposed';

/**
 * The embedded LLM could not load or answer; `reason` says why. Inside the VQA chain it becomes a fallback to the
 * top VQA candidate with this message as the reason, never a failed question.
 *
 * @example
 * ```ts
 * try {
 *   await llm.invoke('Hi');
 * } catch (error) {
 *   if (LocalLlmError.isInstance(error) && error.reason === 'model_not_found') console.error(error.hint);
 * }
 * ```
 */
export class LocalLlmError extends VqaLlmError {
  static override isInstance(error: unknown): error is LocalLlmError {
    return isVqaLlmError(error, 'LocalLlmError');
  }

  readonly reason: LocalLlmReason;

  constructor(reason: LocalLlmReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'LocalLlmError';
    this.reason = reason;
  }
}
