import { InvalidConversationError, InvalidImageError, InvalidOptionError, InvalidQuestionError, isVqaLlmError, type InvalidConversationReason } from '../errors/index.js';

/** The `type` values OpenAI's API uses, so that clients map them to their own error classes. */
export type ApiErrorType = 'invalid_request_error' | 'not_found_error' | 'server_error' | 'service_unavailable_error';

/** The error object every failed request gets, in OpenAI's shape: `{ error: { message, type, param, code } }`. */
export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null; reason?: string };
}

/**
 * An HTTP error with its OpenAI-style body. Route code throws these; the server's error handler sends them.
 *
 * @example
 * ```ts
 * throw new ApiError(400, 'missing_image', 'The request has no image.', { param: 'messages' });
 * ```
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly reason?: string;
  /** Sent as the Retry-After header (503s). */
  readonly retryAfterSeconds?: number;

  constructor(status: number, code: string, message: string, options: { param?: string; type?: ApiErrorType; reason?: string; retryAfterSeconds?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.param = options.param ?? null;
    this.type = options.type ?? (status === 404 ? 'not_found_error' : status === 503 ? 'service_unavailable_error' : status >= 500 ? 'server_error' : 'invalid_request_error');
    this.reason = options.reason;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code, ...(this.reason ? { reason: this.reason } : {}) } };
  }
}

// OpenAI's codes for what the shared conversation rules refuse; most are the reason itself.
const CONVERSATION_CODES: Record<InvalidConversationReason, string> = {
  missing_image: 'missing_image',
  too_many_images: 'too_many_images',
  missing_question: 'missing_question',
  misplaced_image: 'invalid_value',
  unsupported_content: 'unsupported_content_part',
  unsupported_schema: 'unsupported_schema',
};

function conversationApiError(error: InvalidConversationError, param?: string): ApiError {
  const message = error.reason === 'unsupported_schema' ? `${error.message} See the server's docs for the schemas it fills.` : error.message;
  return new ApiError(400, CONVERSATION_CODES[error.reason], message, { param: error.param ?? param, cause: error });
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  validation?: unknown;
}

/**
 * Maps anything a route threw to the error a client sees. Messages of our own typed errors are written for people
 * and carry no image bytes; anything unexpected gets a generic message, so internals never leak.
 */
export function toApiError(error: unknown, param?: string): ApiError {
  if (error instanceof ApiError) return error;
  if (InvalidConversationError.isInstance(error)) return conversationApiError(error, param);
  if (InvalidImageError.isInstance(error)) {
    return new ApiError(400, 'invalid_image', error.message, { param, reason: error.reason, cause: error });
  }
  if (InvalidQuestionError.isInstance(error)) {
    const code = error.reason === 'empty' ? 'missing_question' : 'invalid_question';
    return new ApiError(400, code, error.message, { reason: error.reason, cause: error });
  }
  if (InvalidOptionError.isInstance(error)) {
    return new ApiError(400, 'invalid_value', error.message, { cause: error });
  }
  // The client hung up: nobody reads this answer, but logs and metrics should not call it a server failure.
  if ((error as Error)?.name === 'AbortError') {
    return new ApiError(499, 'client_closed_request', 'The client closed the connection before the answer was ready.', { cause: error });
  }
  const framework = error as FastifyLikeError;
  switch (framework?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'request_too_large', 'The request body is larger than the server accepts.', { cause: error });
    // The framework's message quotes the body, which may hold an image: never pass it on.
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'invalid_json', 'The request body is not valid JSON.', { cause: error });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'invalid_json', 'The request body is empty; send a JSON object.', { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'Send application/json (or multipart/form-data to /v1/vqa).', { cause: error });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(400, 'invalid_content_length', 'The Content-Length header does not match the body.', { cause: error });
    case 'FST_REQ_FILE_TOO_LARGE':
      return new ApiError(413, 'image_too_large', 'The uploaded image is larger than the server accepts.', { param: 'image', cause: error });
    case 'FST_FILES_LIMIT':
      return new ApiError(400, 'too_many_images', 'Upload one image per request.', { param: 'image', cause: error });
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new ApiError(400, 'too_many_fields', 'The form has more fields than the server accepts.', { cause: error });
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'The multipart request has no valid boundary.', { cause: error });
  }
  const status = framework?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // A framework 4xx we do not know by code: its message describes the request, not the body's content.
    return new ApiError(status, 'invalid_request', error instanceof Error ? error.message : 'Bad request.', { cause: error });
  }
  if (isVqaLlmError(error)) {
    return new ApiError(500, (error as { code: string }).code, 'The vision models failed on this request.', { type: 'server_error', cause: error });
  }
  return new ApiError(500, 'internal_error', 'The server failed to answer this request.', { cause: error });
}
