import * as errors from '../errors/index.js';
import { VqaLlmError } from '../errors/vqa-llm-error.js';

const tag = '__vqaLlmError';

export interface SerializedError {
  [tag]: true;
  name: string;
  reason: string;
  message: string;
}

/** Typed errors as plain data, so they survive the trip from a worker thread. */
export function serializeError(error: unknown): SerializedError {
  if (VqaLlmError.isInstance(error)) {
    return { [tag]: true, name: error.name, reason: error.code, message: error.message };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { [tag]: true, name: 'InferenceError', reason: 'worker_failed', message: `Inference failed in a worker: ${message}` };
}

export function isSerializedError(value: unknown): value is SerializedError {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[tag] === true;
}

export function deserializeError(value: SerializedError): VqaLlmError {
  const ErrorClass = (errors as unknown as Record<string, new (reason: string, message: string) => VqaLlmError>)[value.name];
  const error = ErrorClass && value.name !== 'VqaLlmError' ? new ErrorClass(value.reason, value.message) : new VqaLlmError(value.reason, value.message);
  return error;
}
