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
  // No `this` inside: `errors.filter(VqaLlmError.isInstance)` must work unbound.
  static isInstance(error: unknown): error is VqaLlmError {
    return isVqaLlmError(error);
  }
}

/** True for any error of this library; with `name`, only for errors of that class. */
export function isVqaLlmError(error: unknown, name?: string): boolean {
  if (typeof error !== 'object' || error === null || (error as Record<symbol, unknown>)[marker] !== true) return false;
  return name === undefined || (error as Error).name === name;
}
