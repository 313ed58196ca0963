import { isVqaLlmError, VqaLlmError, type VqaLlmErrorOptions } from './vqa-llm-error.js';

/**
 * `unauthorized`: 401/403 (a private or gated repository, or a token the hub refuses); `rate_limited`: 429 after the
 * retries allowed; `http_error`: any other HTTP failure; `network`: the host could not be reached or the connection broke.
 */
export type ModelDownloadReason = 'http_error' | 'checksum_mismatch' | 'network' | 'unauthorized' | 'rate_limited';

/** Downloading a model failed; `reason` says why. */
export class ModelDownloadError extends VqaLlmError {
  static override isInstance(error: unknown): error is ModelDownloadError {
    return isVqaLlmError(error, 'ModelDownloadError');
  }

  readonly reason: ModelDownloadReason;
  /** The HTTP status the server answered, for `http_error`, `unauthorized` and `rate_limited`. */
  readonly status?: number;

  constructor(reason: ModelDownloadReason, message: string, options: VqaLlmErrorOptions & { status?: number } = {}) {
    super(reason, message, options);
    this.name = 'ModelDownloadError';
    this.reason = reason;
    if (options.status !== undefined) this.status = options.status;
  }
}
