import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type CheckpointReason =
  | 'missing_file'
  | 'bad_header'
  | 'legacy_format'
  | 'truncated'
  | 'out_of_bounds'
  | 'unknown_dtype'
  | 'forbidden_global'
  | 'missing_key'
  | 'unexpected_key'
  | 'shape_mismatch'
  | 'closed';

export interface CheckpointErrorOptions extends VqaLlmErrorOptions {
  /** The checkpoint file (or folder) at fault. */
  file?: string;
  /** The tensor at fault, when there is one. */
  key?: string;
}

/**
 * A checkpoint (safetensors or PyTorch) cannot be read; `reason` says why, `file` and `key` say where.
 *
 * @example
 * try {
 *   await openCheckpoint('models/hub/blip');
 * } catch (error) {
 *   if (CheckpointError.isInstance(error) && error.reason === 'forbidden_global') console.error(error.message);
 * }
 */
export class CheckpointError extends VqaLlmError {
  static override isInstance(error: unknown): error is CheckpointError {
    return isVqaLlmError(error, 'CheckpointError');
  }

  readonly reason: CheckpointReason;
  readonly file?: string;
  readonly key?: string;

  constructor(reason: CheckpointReason, message: string, options: CheckpointErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'CheckpointError';
    this.reason = reason;
    this.file = options.file;
    this.key = options.key;
  }
}
