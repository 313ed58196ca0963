import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

export type ConversionReason =
  /** config.json (or the checkpoint folder itself) is absent. */
  | 'missing_file'
  /** config.json is not JSON, or lacks what the family needs (VLE's id2label, a square position table...). */
  | 'bad_config'
  /** config.json names a model type the converter does not build. */
  | 'unsupported_model'
  /** No shipped template has the checkpoint's structure: `differences` lists what differs, `hint` the Python export. */
  | 'no_template'
  /** A template folder is unreadable or inconsistent with its graph. */
  | 'bad_template'
  /** A tensor a graph needs is absent from the checkpoint. */
  | 'missing_key'
  /** The checkpoint holds a tensor no graph uses (and the Python loaders do not drop). */
  | 'unexpected_key'
  /** A tensor's shape in the checkpoint is not the one the graph needs. */
  | 'shape_mismatch'
  /** A tensor's element type cannot become the graph's (an integer tensor where weights are floats). */
  | 'dtype_mismatch'
  /** The output folder exists already and `overwrite` was not given. */
  | 'output_exists'
  /** The checkpoint's tokenizer files cannot be converted (a damaged or foreign spm.model, a vocabulary without
   * the special tokens, added tokens at other ids): `file` names the file, `key` the token when there is one. */
  | 'bad_tokenizer';

/** One structural config value where a checkpoint and a template disagree. */
export interface ConfigDifference {
  /** Dotted path in the completed config, e.g. `vision_config.hidden_size`. */
  path: string;
  checkpoint: unknown;
  template: unknown;
}

export interface ConversionErrorOptions extends VqaLlmErrorOptions {
  /** The checkpoint tensor at fault. */
  key?: string;
  /** The file at fault (a checkpoint file, config.json, a template.json). */
  file?: string;
  /** The dotted config path at fault. */
  path?: string;
  /** For `no_template`: every structural path that differs from the closest template. */
  differences?: ConfigDifference[];
}

/**
 * Turning an upstream checkpoint into a model folder failed; `reason` says why, `key`, `file` and `path` say where.
 * Damaged checkpoint files (truncated, bad headers, forbidden pickle globals) surface as the readers' `CheckpointError`.
 *
 * @example
 * try {
 *   await convertCheckpoint({ checkpoint: 'checkpoints/blip-finetune', out: 'models/blip-finetune' });
 * } catch (error) {
 *   if (ConversionError.isInstance(error) && error.reason === 'no_template') {
 *     for (const { path, checkpoint, template } of error.differences ?? []) console.error(path, checkpoint, template);
 *   }
 * }
 */
export class ConversionError extends VqaLlmError {
  static override isInstance(error: unknown): error is ConversionError {
    return isVqaLlmError(error, 'ConversionError');
  }

  readonly reason: ConversionReason;
  readonly key?: string;
  readonly file?: string;
  readonly path?: string;
  readonly differences?: ConfigDifference[];

  constructor(reason: ConversionReason, message: string, options: ConversionErrorOptions = {}) {
    super(reason, message, options);
    this.name = 'ConversionError';
    this.reason = reason;
    this.key = options.key;
    this.file = options.file;
    this.path = options.path;
    this.differences = options.differences;
  }
}
