const marker = Symbol.for('vqa-llm.error');

export interface VqaLlmErrorOptions {
  /** What the user can do about it: a command to run, a setting to change. */
  hint?: string;
  cause?: unknown;
}

/**
 * Base of every error this library throws on purpose. `name` is stable across versions and
 * `code` is a machine-readable reason, so callers can branch without parsing messages.
 */
export class VqaLlmError extends Error {
  readonly [marker] = true;
  readonly code: string;
  readonly hint?: string;

  constructor(code: string, message: string, options: VqaLlmErrorOptions = {}) {
    super(options.hint ? `${message} ${options.hint}` : message, { cause: options.cause });
    this.name = 'VqaLlmError';
    this.code = code;
    this.hint = options.hint;
  }

  /** True for errors of this class, also across copies of the package (instanceof is not). */
  static isInstance<T extends typeof VqaLlmError>(this: T, error: unknown): error is InstanceType<T> {
    if (typeof error !== 'object' || error === null || (error as Record<symbol, unknown>)[marker] !== true) return false;
    // The base class matches every subclass; a subclass matches only errors of its own name.
    return this.errorName === 'VqaLlmError' || (error as Error).name === this.errorName;
  }

  static readonly errorName: string = 'VqaLlmError';
}
