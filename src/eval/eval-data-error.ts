import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from '../errors/vqa-llm-error.js';

export type EvalDataReason =
  /** The file is not JSON / JSONL of the expected shape. */
  | 'invalid_file'
  /** Two questions (or annotations) share an id, so which answers belong to which prediction is ambiguous. */
  | 'duplicate_question_id'
  /** None of the predictions' question ids are in the annotations: the files belong to different datasets. */
  | 'dataset_mismatch'
  /** Nothing is left to evaluate or score. */
  | 'empty';

/**
 * An evaluation input (questions, annotations, a JSONL dataset, a predictions file) cannot be used as it is.
 * Problems that leave a meaningful accuracy (a missing image, an unannotated question) are warnings in the
 * summary instead.
 */
export class EvalDataError extends VqaLlmError {
  static override isInstance(error: unknown): error is EvalDataError {
    return isVqaLlmError(error, 'EvalDataError');
  }

  readonly reason: EvalDataReason;

  constructor(reason: EvalDataReason, message: string, options: VqaLlmErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'EvalDataError';
    this.reason = reason;
  }
}
