import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type GraphMismatchReason = 'missing_input' | 'unexpected_input' | 'missing_output';

/** An ONNX graph does not match its manifest; `reason` says why. */
export class GraphMismatchError extends VqaLlmError {
  static override isInstance(error: unknown): error is GraphMismatchError {
    return isVqaLlmError(error, 'GraphMismatchError');
  }

  readonly reason: GraphMismatchReason;

  constructor(reason: GraphMismatchReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'GraphMismatchError';
    this.reason = reason;
  }
}
